// Package deploy holds the offline checks of the deployment files: the
// compose stack, the nginx configuration, the Helm chart and the log
// pipeline's setup command. Nothing here runs in production.
package deploy
