"""Real programs the tests run against (see ``docs/peers.md``): etcd and kube-apiserver."""
