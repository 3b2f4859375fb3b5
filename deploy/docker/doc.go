// Package docker holds the image build of every MyMONIT command
// (Dockerfile, with its Dockerfile.dockerignore) and the offline checks of
// that build: the tests parse the Dockerfile with BuildKit's parser and walk
// the build context through the ignore file, since no Docker engine runs
// where the tests do. The healthcheck subdirectory is the probe the images
// carry in place of curl.
package docker
