package ec2api

import (
	"maps"
	"slices"
	"strings"

	"github.com/podsg/podsg/internal/vpc/state"
)

// Shared XML shapes. Element names follow the EC2 wire format as read by
// aws-sdk-go-v2's ec2query deserializers and botocore.

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func tagSet(t state.Tags) []xmlTag {
	out := make([]xmlTag, 0, len(t))
	for _, k := range slices.Sorted(maps.Keys(t)) {
		out = append(out, xmlTag{Key: k, Value: t[k]})
	}
	return out
}

type xmlGroup struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

// groupSet names groups; a group deleted meanwhile renders with its id only.
func groupSet(tx *state.Tx, ids []string) []xmlGroup {
	out := make([]xmlGroup, 0, len(ids))
	for _, id := range ids {
		g := xmlGroup{GroupID: id}
		if sg, ok := tx.SecurityGroup(id); ok {
			g.GroupName = sg.Name
		}
		out = append(out, g)
	}
	return out
}

type xmlState struct {
	State string `xml:"state"`
}

// azID derives an availability zone id such as usw2-az1 from us-west-2a.
func azID(region, az string) string {
	parts := strings.Split(region, "-")
	short := ""
	for i, p := range parts {
		if i == 0 || i == len(parts)-1 {
			short += p
		} else if p != "" {
			short += p[:1]
		}
	}
	letter := strings.TrimPrefix(az, region)
	if len(letter) != 1 {
		return short + "-az1"
	}
	return short + "-az" + string(rune('1'+letter[0]-'a'))
}

func arn(region, resource string) string {
	return "arn:aws:ec2:" + region + ":" + state.AccountID + ":" + resource
}
