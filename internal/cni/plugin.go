package cni

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/podsg/podsg/internal/agentapi"
	"github.com/podsg/podsg/internal/podnet"
	"github.com/podsg/podsg/internal/podstate"
)

// SupportedVersions are the CNI spec versions the plugin speaks.
var SupportedVersions = version.PluginSupports("1.0.0", "1.1.0")

// Funcs returns the plugin's CNI commands for skel.PluginMainFuncs.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck}
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
	if errors.Is(err, podstate.ErrNotFound) {
		return nil // nothing was set up, or a DEL already tore it down
	}
	if err != nil {
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

// cmdCheck reports drift between the record and the kernel.
func cmdCheck(args *skel.CmdArgs) error {
	_, store, err := openStore(args)
	if err != nil {
		return err
	}
	rec, err := store.Get(args.ContainerID, args.IfName)
	if err != nil {
		return types.NewError(types.ErrInternal, "no network record for this container", err.Error())
	}
	if err := podnet.Check(args.Netns, rec); err != nil {
		return types.NewError(types.ErrInternal, "pod network drifted", err.Error())
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
