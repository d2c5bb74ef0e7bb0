package provider

import (
	"testing"
	"time"
)

func TestShortDurationIsHowUsersWriteIt(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Minute: "1m", 10 * time.Minute: "10m", time.Hour: "1h", 8760 * time.Hour: "8760h", 90 * time.Minute: "1h30m", 30 * time.Second: "30s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
