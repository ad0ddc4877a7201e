package ec2api

import (
	"context"
	"strconv"
	"strings"

	"github.com/podsg/podsg/internal/cloud/instancetypes"
	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
)

type xmlInstanceType struct {
	InstanceType                  string         `xml:"instanceType"`
	CurrentGeneration             bool           `xml:"currentGeneration"`
	FreeTierEligible              bool           `xml:"freeTierEligible"`
	SupportedUsageClasses         []string       `xml:"supportedUsageClasses>item"`
	SupportedRootDeviceTypes      []string       `xml:"supportedRootDeviceTypes>item"`
	SupportedVirtualizationTypes  []string       `xml:"supportedVirtualizationTypes>item"`
	BareMetal                     bool           `xml:"bareMetal"`
	Hypervisor                    string         `xml:"hypervisor"`
	ProcessorInfo                 xmlProcessor   `xml:"processorInfo"`
	VCPUInfo                      xmlVCPU        `xml:"vCpuInfo"`
	MemoryInfo                    xmlMemory      `xml:"memoryInfo"`
	InstanceStorageSupported      bool           `xml:"instanceStorageSupported"`
	NetworkInfo                   xmlNetworkInfo `xml:"networkInfo"`
	BurstablePerformanceSupported bool           `xml:"burstablePerformanceSupported"`
	HibernationSupported          bool           `xml:"hibernationSupported"`
	SupportedBootModes            []string       `xml:"supportedBootModes>item"`
}

type xmlProcessor struct {
	SupportedArchitectures []string `xml:"supportedArchitectures>item"`
}

type xmlVCPU struct {
	DefaultVCPUs          int32 `xml:"defaultVCpus"`
	DefaultCores          int32 `xml:"defaultCores"`
	DefaultThreadsPerCore int32 `xml:"defaultThreadsPerCore"`
}

type xmlMemory struct {
	SizeInMiB int64 `xml:"sizeInMiB"`
}

type xmlNetworkInfo struct {
	NetworkPerformance        string           `xml:"networkPerformance"`
	MaximumNetworkInterfaces  int              `xml:"maximumNetworkInterfaces"`
	MaximumNetworkCards       int              `xml:"maximumNetworkCards"`
	DefaultNetworkCardIndex   int              `xml:"defaultNetworkCardIndex"`
	NetworkCards              []xmlNetworkCard `xml:"networkCards>item"`
	IPv4AddressesPerInterface int              `xml:"ipv4AddressesPerInterface"`
	IPv6AddressesPerInterface int              `xml:"ipv6AddressesPerInterface"`
	IPv6Supported             bool             `xml:"ipv6Supported"`
	EnaSupport                string           `xml:"enaSupport"`
	EfaSupported              bool             `xml:"efaSupported"`
}

type xmlNetworkCard struct {
	NetworkCardIndex         int    `xml:"networkCardIndex"`
	NetworkPerformance       string `xml:"networkPerformance"`
	MaximumNetworkInterfaces int    `xml:"maximumNetworkInterfaces"`
}

func renderInstanceType(t instancetypes.Type) xmlInstanceType {
	return xmlInstanceType{
		InstanceType: t.Name, CurrentGeneration: true, FreeTierEligible: t.Name == "t3.micro",
		SupportedUsageClasses:        []string{"on-demand", "spot"},
		SupportedRootDeviceTypes:     []string{"ebs"},
		SupportedVirtualizationTypes: []string{"hvm"},
		Hypervisor:                   "nitro",
		ProcessorInfo:                xmlProcessor{SupportedArchitectures: []string{"x86_64"}},
		VCPUInfo:                     xmlVCPU{DefaultVCPUs: t.VCPUs, DefaultCores: max(1, t.VCPUs/2), DefaultThreadsPerCore: 2},
		MemoryInfo:                   xmlMemory{SizeInMiB: t.MemoryMiB},
		NetworkInfo: xmlNetworkInfo{
			NetworkPerformance: t.NetworkPerformance, MaximumNetworkInterfaces: t.MaxENIs, MaximumNetworkCards: 1,
			NetworkCards:              []xmlNetworkCard{{NetworkPerformance: t.NetworkPerformance, MaximumNetworkInterfaces: t.MaxENIs}},
			IPv4AddressesPerInterface: t.IPv4PerENI, IPv6AddressesPerInterface: t.IPv6PerENI, IPv6Supported: true,
			EnaSupport: "required",
		},
		BurstablePerformanceSupported: strings.HasPrefix(t.Name, "t"),
		SupportedBootModes:            []string{"legacy-bios", "uefi"},
	}
}

func instanceTypeFields(t instancetypes.Type) query.Fields {
	return fieldMap(nil, map[string][]string{
		"instance-type":                             one(t.Name),
		"current-generation":                        one("true"),
		"network-info.maximum-network-interfaces":   one(strconv.Itoa(t.MaxENIs)),
		"network-info.ipv4-addresses-per-interface": one(strconv.Itoa(t.IPv4PerENI)),
		"vcpu-info.default-vcpus":                   one(strconv.Itoa(int(t.VCPUs))),
		"memory-info.size-in-mib":                   one(strconv.FormatInt(t.MemoryMiB, 10)),
		"burstable-performance-supported":           one(strconv.FormatBool(strings.HasPrefix(t.Name, "t"))),
		"hypervisor":                                one("nitro"),
	})
}

func (a *API) describeInstanceTypes(_ context.Context, req *query.Request) (query.Response, error) {
	if dry, err := req.DryRun(); err != nil || dry {
		if err == nil {
			err = apierr.DryRun()
		}
		return nil, err
	}
	for _, name := range req.Params.List("InstanceType") {
		if _, ok := instancetypes.Lookup(name); !ok {
			return nil, apierr.New("InvalidInstanceType", "The following supplied instance types do not exist: [%s]", name)
		}
	}
	l := listing[instancetypes.Type]{
		all: func() []instancetypes.Type { return selectedTypes(req.Params.List("InstanceType")) },
		key: func(t instancetypes.Type) string { return t.Name }, fields: instanceTypeFields,
		minPage: 5, maxPage: 100,
	}
	page, next, err := l.run(req.Params)
	if err != nil {
		return nil, err
	}
	resp := &struct {
		query.Envelope
		InstanceTypeSet []xmlInstanceType `xml:"instanceTypeSet>item"`
		NextToken       string            `xml:"nextToken,omitempty"`
	}{NextToken: next}
	for _, t := range page {
		resp.InstanceTypeSet = append(resp.InstanceTypeSet, renderInstanceType(t))
	}
	return resp, nil
}

func selectedTypes(names []string) []instancetypes.Type {
	if len(names) == 0 {
		return instancetypes.All()
	}
	var out []instancetypes.Type
	for _, t := range instancetypes.All() {
		for _, n := range names {
			if n == t.Name {
				out = append(out, t)
				break
			}
		}
	}
	return out
}
