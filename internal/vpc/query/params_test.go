package query

import (
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

func parse(t testing.TB, raw string) Params {
	t.Helper()
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	return FromValues(v)
}

func TestListAndMembers(t *testing.T) {
	p := parse(t, "SecurityGroupId.2=sg-b&SecurityGroupId.1=sg-a&SecurityGroupId.10=sg-c&SecurityGroupId.x=bad"+
		"&IpPermissions.2.IpProtocol=udp&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0/8"+
		"&IpPermissions.1.Groups.1.GroupId=sg-1&IpPermissions.1.Groups.2.GroupId=sg-2")
	if got := p.List("SecurityGroupId"); !reflect.DeepEqual(got, []string{"sg-a", "sg-b", "sg-c"}) {
		t.Errorf("List = %v", got)
	}
	perms := p.Members("IpPermissions")
	if len(perms) != 2 || perms[0].String("IpProtocol") != "tcp" || perms[1].String("IpProtocol") != "udp" {
		t.Fatalf("Members = %v", perms)
	}
	if got := perms[0].Members("Groups"); len(got) != 2 || got[1].String("GroupId") != "sg-2" {
		t.Errorf("nested Members = %v", got)
	}
	if got := perms[0].Members("IpRanges")[0].String("CidrIp"); got != "10.0.0.0/8" {
		t.Errorf("nested CidrIp = %q", got)
	}
}

func TestFiltersAndTagSpecifications(t *testing.T) {
	tests := map[string]struct {
		raw      string
		filters  []Filter
		specs    []TagSpecification
		wantCode string
	}{
		"filters": {
			raw:     "Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-1&Filter.1.Value.2=vpc-2&Filter.2.Name=tag:Name&Filter.2.Value.1=x",
			filters: []Filter{{Name: "vpc-id", Values: []string{"vpc-1", "vpc-2"}}, {Name: "tag:Name", Values: []string{"x"}}},
		},
		"filter without name": {raw: "Filter.1.Value.1=x", wantCode: apierr.CodeMissingParameter},
		"tag specs": {
			raw:   "TagSpecification.1.ResourceType=vpc&TagSpecification.1.Tag.1.Key=a&TagSpecification.1.Tag.1.Value=b&TagSpecification.1.Tag.2.Key=c",
			specs: []TagSpecification{{ResourceType: "vpc", Tags: []Tag{{Key: "a", Value: "b", HasValue: true}, {Key: "c"}}}},
		},
		"tag spec without type": {raw: "TagSpecification.1.Tag.1.Key=a", wantCode: apierr.CodeMissingParameter},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := parse(t, tc.raw)
			filters, ferr := p.Filters()
			specs, serr := p.TagSpecifications()
			if tc.wantCode != "" {
				if !apierr.HasCode(ferr, tc.wantCode) && !apierr.HasCode(serr, tc.wantCode) {
					t.Fatalf("errors %v / %v, want %s", ferr, serr, tc.wantCode)
				}
				return
			}
			if ferr != nil || serr != nil {
				t.Fatalf("errors %v / %v", ferr, serr)
			}
			if !reflect.DeepEqual(filters, tc.filters) || !reflect.DeepEqual(specs, tc.specs) {
				t.Errorf("got %+v %+v", filters, specs)
			}
		})
	}
}

func TestScalars(t *testing.T) {
	p := parse(t, "N=12&Bad=1x&B=TRUE&NB=yes")
	if v, ok, err := p.Int("N"); v != 12 || !ok || err != nil {
		t.Errorf("Int = %d %v %v", v, ok, err)
	}
	if _, _, err := p.Int("Bad"); !apierr.HasCode(err, apierr.CodeInvalidParameterValue) {
		t.Errorf("bad int error %v", err)
	}
	if _, err := p.IntIn("N", 0, 1, 10); !apierr.HasCode(err, apierr.CodeInvalidParameterValue) {
		t.Errorf("range error %v", err)
	}
	if v, ok, err := p.Bool("B"); !v || !ok || err != nil {
		t.Errorf("Bool = %v %v %v", v, ok, err)
	}
	if _, _, err := p.Bool("NB"); err == nil {
		t.Error("yes accepted as a boolean")
	}
	if _, err := p.Required("Missing"); !apierr.HasCode(err, apierr.CodeMissingParameter) {
		t.Errorf("Required error %v", err)
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"vpc-*", "vpc-123", true},
		{"*", "", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*b*", "aaabaaa", true},
		{"10.0.*.1", "10.0.55.1", true},
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
		{"exact", "exactly", false},
	}
	for _, tc := range tests {
		if got := Glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("Glob(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
}

func TestPaginate(t *testing.T) {
	items := []string{"a", "b", "c", "d", "e"}
	id := func(s string) string { return s }
	var got []string
	pg := Page{MaxResults: 2}
	for pages := 0; ; pages++ {
		page, next := Paginate(items, id, pg)
		got = append(got, page...)
		if next == "" {
			break
		}
		p := Params{"NextToken": next, "MaxResults": "2"}
		var err error
		if pg, err = p.ParsePage(1, 10); err != nil {
			t.Fatal(err)
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if strings.Join(got, "") != "abcde" {
		t.Errorf("pages gave %v", got)
	}
	if _, err := (Params{"NextToken": "%%%"}).ParsePage(1, 10); !apierr.HasCode(err, apierr.CodeInvalidPaginationToken) {
		t.Errorf("bad token error %v", err)
	}
}

func TestMatch(t *testing.T) {
	fields := func(name string) ([]string, bool) {
		switch name {
		case "color":
			return []string{"red", "blue"}, true
		}
		return TagFields(map[string]string{"env": "dev"}, name)
	}
	tests := map[string]struct {
		filters []Filter
		want    bool
		code    string
	}{
		"any value":    {[]Filter{{Name: "color", Values: []string{"green", "blue"}}}, true, ""},
		"and":          {[]Filter{{Name: "color", Values: []string{"red"}}, {Name: "tag:env", Values: []string{"prod"}}}, false, ""},
		"tag-key":      {[]Filter{{Name: "tag-key", Values: []string{"env"}}}, true, ""},
		"absent tag":   {[]Filter{{Name: "tag:team", Values: []string{"*"}}}, false, ""},
		"unknown name": {[]Filter{{Name: "shape", Values: []string{"x"}}}, false, apierr.CodeInvalidParameterValue},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Match(tc.filters, fields)
			if tc.code != "" {
				if !apierr.HasCode(err, tc.code) {
					t.Fatalf("error %v, want %s", err, tc.code)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Match = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// FuzzDecodeQuery feeds arbitrary form bodies through every decoder: none
// may panic, and decoded structures must stay consistent with the input.
func FuzzDecodeQuery(f *testing.F) {
	f.Add("Action=DescribeVpcs&Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-1")
	f.Add("TagSpecification.1.ResourceType=vpc&TagSpecification.1.Tag.1.Key=a&TagSpecification.1.Tag.1.Value=b")
	f.Add("IpPermissions.1.IpProtocol=tcp&IpPermissions.1.Groups.999999.GroupId=sg-1&MaxResults=5&NextToken=YQ")
	f.Add("Filter.0000001.Name=x&Filter..Name=y&Filter.-1.Name=z&SecurityGroupId.1.=a")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p := FromValues(v)
		if filters, err := p.Filters(); err == nil {
			for _, fl := range filters {
				if fl.Name == "" {
					t.Fatalf("filter without a name from %q", raw)
				}
				_, _ = Match([]Filter{fl}, func(string) ([]string, bool) { return []string{raw}, true })
			}
		}
		_, _ = p.TagSpecifications()
		_, _ = p.Tags("Tag")
		_, _ = p.ParsePage(5, 1000)
		for _, m := range p.Members("IpPermissions") {
			if len(m) == 0 {
				t.Fatalf("empty member from %q", raw)
			}
			_ = m.Members("Groups")
		}
		if n := len(p.List("SecurityGroupId")); n > len(p) {
			t.Fatalf("List returned %d items from %d params", n, len(p))
		}
	})
}
