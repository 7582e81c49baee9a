// Command gateway-routes prints, as JSON, the Envoy RouteConfigurations that Istio's Pilot
// computes for an ingress gateway from a set of Istio configs. It runs Pilot in-process with
// pilot/test/xds's fake discovery server (no cluster, no network), so istiolab's tests can
// compare their own routing model with Istio's.
//
//	gateway-routes -config rules.yaml [-objects services.yaml] [-labels istio=ingressgateway]
//	               [-namespace istio-system] [-proxy router|sidecar]
//
// With -proxy sidecar it prints the routes of a sidecar in -namespace instead (the mesh view).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/log"
	"istio.io/istio/pkg/test"
)

func read(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	if path == "-" {
		b, err := io.ReadAll(os.Stdin)
		return string(b), err
	}
	b, err := os.ReadFile(path)
	return string(b), err
}

func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}

func main() {
	configPath := flag.String("config", "-", "Istio configs (YAML; - for stdin)")
	objectsPath := flag.String("objects", "", "Kubernetes objects: Services, Pods (YAML)")
	labelsFlag := flag.String("labels", "istio=ingressgateway", "the gateway pod's labels")
	namespace := flag.String("namespace", "istio-system", "the gateway's namespace")
	proxyType := flag.String("proxy", "router", "router (an ingress gateway) or sidecar")
	flag.Parse()

	// Pilot logs at info level to stdout, where the JSON goes: errors only, to stderr
	opts := log.DefaultOptions()
	opts.OutputPaths = []string{"stderr"}
	opts.SetDefaultOutputLevel(log.OverrideScopeName, log.ErrorLevel)
	if err := log.Configure(opts); err != nil {
		fmt.Fprintln(os.Stderr, "gateway-routes:", err)
		os.Exit(2)
	}

	configs, err := read(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway-routes:", err)
		os.Exit(2)
	}
	objects, err := read(*objectsPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway-routes:", err)
		os.Exit(2)
	}

	parsed, _, err := crd.ParseInputs(configs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway-routes:", err)
		os.Exit(2)
	}
	// As istiod's Kubernetes config store does: configs carry the cluster's domain suffix, so
	// that short host names resolve to <name>.<namespace>.svc.cluster.local (the fake server's
	// own YAML parsing leaves it empty, and short names would stay <name>.<namespace>).
	now := time.Now()
	cfgs := make([]config.Config, 0, len(parsed))
	for _, c := range parsed {
		if c.Namespace == "" {
			c.Namespace = "default"
		}
		c.Domain = "cluster.local"
		if c.CreationTimestamp.IsZero() {
			c.CreationTimestamp = now
		}
		cfgs = append(cfgs, c)
	}
	ptype := model.Router
	switch *proxyType {
	case "router":
	case "sidecar":
		ptype = model.SidecarProxy
	default:
		fmt.Fprintln(os.Stderr, "gateway-routes: -proxy must be router or sidecar")
		os.Exit(2)
	}

	var out bytes.Buffer
	// test.Wrap gives the fake server the test.Failer it needs, turning a failure into an error
	err = test.Wrap(func(t test.Failer) {
		s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
			Configs:                cfgs,
			KubernetesObjectString: objects,
		})
		labels := parseLabels(*labelsFlag)
		proxy := s.SetupProxy(&model.Proxy{
			Type:            ptype,
			ConfigNamespace: *namespace,
			Labels:          labels,
			Metadata:        &model.NodeMetadata{Labels: labels, Namespace: *namespace},
		})
		var routes []json.RawMessage
		for _, r := range s.Routes(proxy) {
			b, err := protojson.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			routes = append(routes, b)
		}
		b, err := json.MarshalIndent(routes, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		out.Write(b)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway-routes:", err)
		os.Exit(1)
	}
	fmt.Println(out.String())
}
