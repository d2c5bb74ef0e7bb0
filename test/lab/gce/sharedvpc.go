package gce

import (
	"fmt"
	"net/http"
	"strings"
)

// Shared VPC (https://cloud.google.com/vpc/docs/shared-vpc). Besides its
// own project the server holds the networks, subnetworks and firewall
// rules of Shared VPC host projects (OwnerSharedVPC); nothing else of a
// host project is modelled. Objects of the server's own project are keyed
// by name, a host project's by "<project>/<name>".

// key is the state key of a network, subnetwork or firewall rule.
func (s *Server) key(project, name string) string {
	if project == s.opts.Project {
		return name
	}
	return project + "/" + name
}

// netRef resolves a network or subnetwork reference (a URL, a
// projects/... path, or a path relative to project) to the project it
// names and its state key.
func (s *Server) netRef(project, ref string) (string, string) {
	parts := strings.Split(relative(project, ref), "/")
	if len(parts) < 2 {
		return project, ""
	}
	return parts[1], s.key(parts[1], parts[len(parts)-1])
}

// subnetRef is netRef for a subnetwork, which must be of the server's region.
func (s *Server) subnetRef(project, ref string) (string, string) {
	p, key := s.netRef(project, ref)
	if s.regionalRef(p, ref, "subnetworks") == "" {
		return p, ""
	}
	return p, key
}

// mayUse reports whether objects of project may use project other's
// networks: their own, or a Shared VPC host's that project is attached to.
func (s *Server) mayUse(project, other string) bool {
	return project == other || s.st.sharedVPC[other][project]
}

// hostProject reports whether project is a Shared VPC host the server holds.
func (s *Server) hostProject(project string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.st.sharedVPC[project]
	return ok
}

// hostMethod reports whether the server serves method in a host project:
// its networks, subnetworks, firewall rules and their operations.
func hostMethod(method string) bool {
	for _, p := range []string{"networks.", "subnetworks.", "firewalls.", "globalOperations.", "regionOperations."} {
		if strings.HasPrefix(method, p) {
			return true
		}
	}
	return false
}

// crossProject is Compute's refusal of a reference to another project's
// network or subnetwork where it allows none (gh:terraform-google-modules/terraform-google-bastion-host#5).
func crossProject(field, ref string) *Error {
	return badRequest("invalid", fmt.Sprintf("Invalid value for field '%s': '%s'. Cross project referencing is not allowed for this resource.", field, ref))
}

// OwnerSharedVPC makes, as an organization's Shared VPC admin would, host
// a Shared VPC host project and attaches service, the server's own project
// unless another is named, to it
// (https://cloud.google.com/vpc/docs/provisioning-shared-vpc). The host's
// networks are then made with OwnerNetworkIn.
func (s *Server) OwnerSharedVPC(host, service string) error {
	if host == s.opts.Project {
		return fmt.Errorf("project %s is the server's own project; a host project is another", host)
	}
	if service == "" {
		service = s.opts.Project
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.sharedVPC[host] == nil {
		s.st.sharedVPC[host] = map[string]bool{}
	}
	s.st.sharedVPC[host][service] = true
	return nil
}

// Firewalls lists the names of project's firewall rules.
func (s *Server) Firewalls(project string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, fw := range s.st.firewalls {
		if strings.HasPrefix(strings.TrimPrefix(fw.GetSelfLink(), selfLinkBase), "projects/"+project+"/") {
			out = append(out, fw.GetName())
		}
	}
	return out
}

// projectKnown is the routes' check of a call's project: the server's
// own, Secret Manager's by number, or a host project for its networks.
func (s *Server) projectKnown(c *call) *Error {
	switch {
	case c.iam, c.project == s.opts.Project, c.secrets && c.project == ProjectNumber:
		return nil
	case !c.secrets && hostMethod(c.method) && s.hostProject(c.project):
		return nil
	case c.secrets:
		return &Error{Status: http.StatusForbidden, Reason: "PERMISSION_DENIED", Message: "Permission denied on resource project " + c.project + "."}
	}
	return notFound("projects/" + c.project)
}
