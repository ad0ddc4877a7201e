package cni

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/podsg/podsg/internal/agentapi"
	"github.com/podsg/podsg/internal/podnet"
	"github.com/podsg/podsg/internal/podstate"
)

// SupportedVersions are the CNI spec versions the plugin speaks.
var SupportedVersions = version.PluginSupports("1.0.0", "1.1.0")

// errPluginNotAvailable is CNI 1.1's STATUS error "the plugin is not available, i.e. cannot
// service ADD requests" (the library has no name for it).
const errPluginNotAvailable uint = 50

// statusTimeout bounds STATUS, which runtimes poll: an agent that accepts but does not answer
// within it is as unavailable as one that is not there.
const statusTimeout = 5 * time.Second

// logOut is where the plugin says what it did beyond the protocol: the runtime's log.
var logOut io.Writer = os.Stderr

// Funcs returns the plugin's CNI commands for skel.PluginMainFuncs.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, Status: cmdStatus}
}

func cmdAdd(args *skel.CmdArgs) error {
	conf, err := ParseConf(args.StdinData)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "invalid podsg network configuration", err.Error())
	}
	ns, name, uid, err := parseArgs(args.Args)
	if err != nil {
		return types.NewError(types.ErrInvalidEnvironmentVariables, "invalid CNI_ARGS", err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), conf.timeout)
	defer cancel()
	agent := agentapi.NewClient(conf.AgentSocket, conf.timeout)
	rec, err := agent.Add(ctx, agentapi.AddRequest{ContainerID: args.ContainerID, IfName: args.IfName, Netns: args.Netns,
		PodNamespace: ns, PodName: name, PodUID: uid})
	if err != nil {
		var ae *agentapi.Error
		if errors.As(err, &ae) && ae.Retryable {
			// The expected wait (annotation or IP not there yet): kubelet retries the sandbox.
			return types.NewError(types.ErrTryAgainLater, "pod network not ready yet", err.Error())
		}
		return types.NewError(types.ErrInternal, "asking the podsg node agent for the pod's network", err.Error())
	}
	res, err := podnet.Add(args.Netns, rec, podnet.Options{MTU: conf.MTU, Driver: conf.driver})
	if err != nil {
		// podnet has rolled back what it built; give the allocation back too.
		if derr := agent.Del(ctx, agentapi.DelRequest{ContainerID: args.ContainerID, IfName: args.IfName}); derr != nil {
			err = fmt.Errorf("%w (and releasing the allocation: %v)", err, derr) //nolint:errorlint // the setup error is the one to act on
		}
		return types.NewError(types.ErrInternal, "setting up the pod's network", err.Error())
	}
	res.CNIVersion = conf.CNIVersion
	return types.PrintResult(res, conf.CNIVersion)
}

// cmdDel tears down from the record alone: it works without the API server, with the agent
// down, and when called twice.
func cmdDel(args *skel.CmdArgs) error {
	conf, store, err := openStore(args)
	if err != nil {
		return err
	}
	rec, err := store.Get(args.ContainerID, args.IfName)
	var corrupt *podstate.CorruptError
	switch {
	case errors.Is(err, podstate.ErrNotFound):
		return nil // nothing was set up, or a DEL already tore it down
	case errors.As(err, &corrupt):
		return delUnusable(args, conf, store, corrupt)
	case err != nil:
		return types.NewError(types.ErrIOFailure, "reading the pod's network record", err.Error())
	}
	if err := podnet.Del(args.Netns, rec); err != nil {
		return types.NewError(types.ErrInternal, "tearing down the pod's network", err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), conf.timeout)
	defer cancel()
	err = agentapi.NewClient(conf.AgentSocket, conf.timeout).Del(ctx, agentapi.DelRequest{ContainerID: args.ContainerID, IfName: args.IfName})
	if errors.Is(err, agentapi.ErrUnavailable) {
		// The agent frees addresses without a record when it starts again.
		err = store.Delete(args.ContainerID, args.IfName)
	}
	if err != nil {
		return types.NewError(types.ErrInternal, "releasing the pod's network", err.Error())
	}
	return nil
}

// delUnusable is DEL for a container whose record cannot be read, which would otherwise fail
// every DEL and keep kubelet from ever removing the sandbox. It tears the network down by the
// names the plugin derives (podnet.DelByNames), sparing what other records hold; then the
// agent sets the record aside and releases the IP it leased to the container, or, when the
// agent is down, the plugin sets the record aside itself (the agent frees the IP when it
// starts again, as for any address without a record). A second DEL finds no record.
func delUnusable(args *skel.CmdArgs, conf *NetConf, store *podstate.Store, corrupt *podstate.CorruptError) error {
	others, _ := store.List() // unreadable ones cannot be spared; the agent reports them
	found, err := podnet.DelByNames(args.Netns, podnet.Names{IfName: args.IfName, HostVeths: hostVeths(conf, args.Args)}, podnet.SpareOf(others))
	if err != nil {
		return types.NewError(types.ErrInternal, "tearing down the pod's network by its names (its record is unusable)", fmt.Sprintf("%v; %v", err, corrupt))
	}
	ctx, cancel := context.WithTimeout(context.Background(), conf.timeout)
	defer cancel()
	aside := "by the node agent, which released the container's IP"
	err = agentapi.NewClient(conf.AgentSocket, conf.timeout).Del(ctx, agentapi.DelRequest{ContainerID: args.ContainerID, IfName: args.IfName})
	if errors.Is(err, agentapi.ErrUnavailable) {
		var path string
		path, err = store.SetAside(args.ContainerID, args.IfName, time.Now())
		aside = "as " + path + " (the node agent is unavailable; it frees the IP when it starts)"
		if errors.Is(err, podstate.ErrNotFound) {
			aside, err = "by a concurrent DEL", nil
		}
	}
	if err != nil {
		return types.NewError(types.ErrInternal, "setting the unusable record aside and releasing the pod's network", fmt.Sprintf("%v; %v", err, corrupt))
	}
	_, _ = fmt.Fprintf(logOut, "podsg-cni: DEL of container %s: %v; tore down what its names lead to (%s); record set aside %s\n",
		args.ContainerID, corrupt, found, aside)
	return nil
}

// hostVeths returns the names the agent may have given the pod's host veth: with its
// --veth-prefix, and "vlan" (strict-mode branch pods). None if CNI_ARGS lack the pod's name.
func hostVeths(conf *NetConf, cniArgs string) []string {
	ns, name, _, err := parseArgs(cniArgs)
	if err != nil {
		return nil
	}
	names := []string{podnet.HostVethName(conf.VethPrefix, ns, name)}
	if conf.VethPrefix != podnet.StrictVethPrefix {
		names = append(names, podnet.HostVethName(podnet.StrictVethPrefix, ns, name))
	}
	return names
}

// cmdCheck reports drift between the record and the kernel. An unusable record is reported as
// such and left in place: CHECK changes nothing, a DEL sets it aside.
func cmdCheck(args *skel.CmdArgs) error {
	_, store, err := openStore(args)
	if err != nil {
		return err
	}
	rec, err := store.Get(args.ContainerID, args.IfName)
	var corrupt *podstate.CorruptError
	if errors.As(err, &corrupt) {
		return types.NewError(types.ErrInternal, "the pod's network record is unusable: nothing to check the network against; DEL tears the pod down by its names and sets the record aside", err.Error())
	}
	if err != nil {
		return types.NewError(types.ErrInternal, "no network record for this container", err.Error())
	}
	if err := podnet.Check(args.Netns, rec); err != nil {
		return types.NewError(types.ErrInternal, "pod network drifted", err.Error())
	}
	return nil
}

// cmdStatus is CNI 1.1's STATUS: the plugin can serve an ADD when the node agent answers.
func cmdStatus(args *skel.CmdArgs) error {
	conf, err := ParseConf(args.StdinData)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "invalid podsg network configuration", err.Error())
	}
	timeout := min(conf.timeout, statusTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := agentapi.NewClient(conf.AgentSocket, timeout).Status(ctx); err != nil {
		return types.NewError(errPluginNotAvailable, "the podsg node agent on "+conf.AgentSocket+" cannot serve ADD", err.Error())
	}
	return nil
}

// openStore parses the configuration and opens the per-container records DEL and CHECK read,
// returning CNI errors.
func openStore(args *skel.CmdArgs) (*NetConf, *podstate.Store, error) {
	conf, err := ParseConf(args.StdinData)
	if err != nil {
		return nil, nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid podsg network configuration", err.Error())
	}
	store, err := podstate.NewStore(conf.StateDir)
	if err != nil {
		return nil, nil, types.NewError(types.ErrIOFailure, "opening the pod state dir", err.Error())
	}
	return conf, store, nil
}
