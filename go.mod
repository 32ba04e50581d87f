module github.com/tcpgo/tcpgo

go 1.25.0

require (
	github.com/pires/go-proxyproto v0.15.0
	github.com/stretchr/testify v1.12.1
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect
