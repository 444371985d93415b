// Command argocd is Argo CD's application controller and repo server, the two components the
// GitOps tests run (with Redis), in one binary that picks the component from the name it runs
// under (argv[0], or ARGOCD_BINARY_NAME), as upstream's multi-call cmd/ does. Upstream's also
// links the API server, the CLI, Dex, notifications and the ApplicationSet controller with their
// SCM and cloud SDKs, about a quarter of its packages and more of its cold build; the tests use
// none of them. `argocd version` prints the version stamped by build-argocd.sh.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/util/log"
)

func main() {
	// Both components log through logrus at the level their flags set; klog (client-go) follows.
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
	// Upstream's main also turns off gRPC's DNS SRV lookups, which linking grpclb turns on (its
	// server does); this binary does not link grpclb, so they are off already and upstream's
	// switch would panic, finding them off.

	name := filepath.Base(os.Args[0])
	if v := os.Getenv("ARGOCD_BINARY_NAME"); v != "" {
		name = v
	}
	var command *cobra.Command
	switch name {
	case common.CommandApplicationController:
		command = appcontroller.NewCommand()
	case common.CommandRepoServer:
		command = reposerver.NewCommand()
	default:
		if len(os.Args) == 2 && os.Args[1] == "version" {
			v := common.GetVersion()
			fmt.Printf("argocd %s (%s, %s)\n", v.Version, v.GoVersion, v.Platform)
			return
		}
		fmt.Fprintf(os.Stderr, "run as %s or %s (a link of that name, or ARGOCD_BINARY_NAME), or `%s version`\n",
			common.CommandApplicationController, common.CommandRepoServer, name)
		os.Exit(2)
	}
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
