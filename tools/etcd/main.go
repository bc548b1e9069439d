// Command etcd is etcd's own server entry point (etcdmain), built from the Go module proxy for the
// integration tests' control plane (scripts/controlplane.py).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
