package sandbox

import (
	"fmt"
	"strings"

	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// The rules below are how real Windows Server treats what the agent does;
// each cites the upstream code or documentation it follows. A rule the
// sandbox does not enforce is a defect the lab cannot catch.

// logFileFlags are the flags whose file a service opens before anything else.
var logFileFlags = []string{"--log-file", "-log-file"}

// missingLogFolder returns the log file of a service whose folder does not
// exist. kube-log-runner opens -log-file with os.OpenFile(O_APPEND|O_CREATE)
// and exits on error without creating its folder
// (kubernetes/kubernetes staging/src/k8s.io/component-base/logs/kube-log-runner/kube-log-runner.go,
// configureAndRun); containerd --run-service does the same with --log-file
// (containerd/containerd cmd/containerd/command/service_windows.go,
// registerUnregisterService).
func (s *Sandbox) missingLogFolder(spec oslayer.ServiceSpec) string {
	if s.m.Identity.GOOS != "windows" {
		return ""
	}
	args := spec.Args
	for i, a := range args {
		for _, f := range logFileFlags {
			file := ""
			if v, ok := strings.CutPrefix(a, f+"="); ok {
				file = v
			} else if a == f && i+1 < len(args) {
				file = args[i+1]
			}
			if file == "" {
				continue
			}
			dir := file[:max(strings.LastIndex(file, `\`), 0)]
			if dir == "" {
				continue
			}
			if st, err := s.Stat(dir); err != nil || !st.IsDir() {
				return file
			}
		}
	}
	return ""
}

// serviceExited is the error a start returns for a service whose process
// exits before it reports running: the Service Control Manager answers
// ERROR_SERVICE_REQUEST_TIMEOUT (1053) or the process's own exit, and the
// service is left stopped.
func serviceExited(name, why string) error {
	return fmt.Errorf("service %s stopped right after its start: %s", name, why)
}
