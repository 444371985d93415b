// Command coredns is the cluster DNS of the local real node (e2e/cluster/node-up.sh): CoreDNS with
// only the plugins that node's Corefile uses. Upstream's main imports core/plugin, which links
// every plugin (cloud DNS providers, etcd, forward, ...); this one imports coremain and the few we
// need, so nothing here can forward a query off the machine.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// Each import registers one plugin with the server type; dnsserver.Directives below decides
	// which directives a Corefile may use and in what order they handle a query.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/template"
)

// The plugin chain, in upstream's plugin.cfg order (a query passes through them top to bottom).
// template answers NXDOMAIN for names outside the cluster zones: there is no forward plugin.
var directives = []string{
	"bind",
	"ready",
	"health",
	"errors",
	"log",
	"loadbalance",
	"cache",
	"template",
	"kubernetes",
}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
