// Package pkg is the root of the shared MyMONIT packages; see the
// subdirectories (config, logging, measure, queue, storage).
package pkg
