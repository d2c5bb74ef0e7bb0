package provision_test

// The cloud whose profile the tests' specs name.
import _ "github.com/mixedk8s/mixedk8s/clouds/aws"
