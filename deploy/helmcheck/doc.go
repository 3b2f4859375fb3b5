// Package helmcheck holds the offline checks of the Helm chart in
// deploy/helm/mymonit: helm lint --strict, and helm template rendered for
// Kubernetes 1.30 and decoded strictly with client-go's scheme, then
// checked for the security and wiring properties the chart promises. The
// helm binary is the pinned one installed by `make helm`.
package helmcheck
