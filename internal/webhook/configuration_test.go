package webhook

import "testing"

func TestParseWebhookManifests(t *testing.T) {
	mut, val, err := parseManifests()
	if err != nil {
		t.Fatal(err)
	}
	if p := *mut.Webhooks[0].ClientConfig.Service.Path; p != MutatePath {
		t.Errorf("mutating path = %s", p)
	}
	if p := *val.Webhooks[0].ClientConfig.Service.Path; p != ValidatePath {
		t.Errorf("validating path = %s", p)
	}
	c := target{url: "https://10.0.0.1:9443", caBundle: []byte("ca")}.clientConfig("/mutate-v1-pod")
	if *c.URL != "https://10.0.0.1:9443/mutate-v1-pod" || c.Service != nil {
		t.Errorf("URL client config = %+v", c)
	}
}

func TestNewCert(t *testing.T) {
	data, err := newCert([]string{"podsg-webhook-service.podsg-system.svc", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if len(data[k]) == 0 {
			t.Errorf("missing %s", k)
		}
	}
}
