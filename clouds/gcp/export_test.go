package gcp

// What the external tests reach inside the package.
var (
	HTTPClient = httpClient
	Images     = imageTable
	SecretID   = secretID
)
