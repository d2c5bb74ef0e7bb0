package oslayer

import (
	"fmt"
	"strings"
)

// SystemdUnit is the unit file of a service.
func SystemdUnit(s ServiceSpec) []byte {
	var b strings.Builder
	desc := s.Description
	if desc == "" {
		desc = s.Name
	}
	fmt.Fprintf(&b, "[Unit]\nDescription=%s\n", desc)
	for _, d := range s.DependsOn {
		fmt.Fprintf(&b, "After=%s.service\nWants=%s.service\n", d, d)
	}
	b.WriteString("\n[Service]\n")
	for _, e := range s.Env {
		fmt.Fprintf(&b, "Environment=%q\n", e)
	}
	for _, f := range s.EnvironmentFiles {
		fmt.Fprintf(&b, "EnvironmentFile=%s\n", f)
	}
	if s.Notify {
		b.WriteString("Type=notify\n")
	}
	fmt.Fprintf(&b, "ExecStart=%s\nRestart=always\nRestartSec=10\nStartLimitInterval=0\nDelegate=yes\nKillMode=process\nLimitNOFILE=infinity\n", s.CommandLine())
	if s.Notify {
		b.WriteString("LimitNPROC=infinity\nLimitCORE=infinity\nTasksMax=infinity\n")
	}
	if s.OOMScoreAdjust != 0 {
		fmt.Fprintf(&b, "OOMScoreAdjust=%d\n", s.OOMScoreAdjust)
	}
	b.WriteString("\n[Install]\nWantedBy=multi-user.target\n")
	return []byte(b.String())
}
