package cluster

// The clouds whose profiles the tests validate against.
import (
	_ "github.com/mixedk8s/mixedk8s/clouds/aws"
	_ "github.com/mixedk8s/mixedk8s/clouds/azure"
	_ "github.com/mixedk8s/mixedk8s/clouds/gcp"
)
