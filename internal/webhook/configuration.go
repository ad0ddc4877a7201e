package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/config"
	"github.com/podsg/podsg/internal/podidentity"
)

// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations;validatingwebhookconfigurations,verbs=get;create;update

// Names of the webhook configurations podsg-controller owns.
const (
	MutatingWebhookName   = "podsg-mutating-webhook"
	ValidatingWebhookName = "podsg-validating-webhook"
)

// target says where the apiserver reaches the webhooks.
type target struct {
	url       string // https://host:port, when running outside the cluster
	service   string // else this Service in namespace
	namespace string
	port      int32
	caBundle  []byte
}

// ensureConfigurations creates or updates the configurations generated from the markers
// (config/webhook), pointed at target with its CA (see configurations).
func ensureConfigurations(ctx context.Context, kube client.Client, t target, identityNamespaces *metav1.LabelSelector, controllerUser string) error {
	mut, val, err := configurations(t, identityNamespaces, controllerUser)
	if err != nil {
		return err
	}
	for _, obj := range []client.Object{mut, val} {
		cur := obj.DeepCopyObject().(client.Object)
		err := kube.Get(ctx, client.ObjectKeyFromObject(obj), cur)
		switch {
		case apierrors.IsNotFound(err):
			err = kube.Create(ctx, obj)
		case err == nil:
			obj.SetResourceVersion(cur.GetResourceVersion())
			err = kube.Update(ctx, obj)
		}
		if err != nil {
			return fmt.Errorf("writing webhook configuration %s: %w", obj.GetName(), err)
		}
	}
	return nil
}

// configurations are the generated configurations as podsg-controller registers them. All
// are fail-closed, so the namespaces that must keep working without podsg (kube-system,
// podsg's own) are excluded from every webhook, the pod identity webhook included.
// identityNamespaces, when not nil, narrows the pod identity webhook to the namespaces it
// selects (the exemption still applies); nil serves every other namespace, as EKS does.
// controllerUser is who writes the annotations the validating webhook guards (see
// validateConditions).
func configurations(t target, identityNamespaces *metav1.LabelSelector, controllerUser string) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	mut, val, err := parseManifests()
	if err != nil {
		return nil, nil, err
	}
	exempt := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", t.namespace}}}}
	for i := range mut.Webhooks {
		p := *mut.Webhooks[i].ClientConfig.Service.Path
		mut.Webhooks[i].ClientConfig = t.clientConfig(p)
		mut.Webhooks[i].NamespaceSelector = exempt
		if p == IdentityPath {
			mut.Webhooks[i].NamespaceSelector = narrow(exempt, identityNamespaces)
			// AWS's pod identity webhook configuration lets pods opt out by this label; so
			// does ours (the handler checks it too, for configurations without the selector).
			mut.Webhooks[i].ObjectSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: podidentity.LabelSkipWebhook, Operator: metav1.LabelSelectorOpDoesNotExist}}}
		}
	}
	for i := range val.Webhooks {
		val.Webhooks[i].ClientConfig = t.clientConfig(*val.Webhooks[i].ClientConfig.Service.Path)
		val.Webhooks[i].NamespaceSelector = exempt
		val.Webhooks[i].MatchConditions = validateConditions(controllerUser)
	}
	mut.Name, val.Name = MutatingWebhookName, ValidatingWebhookName
	return mut, val, nil
}

// GuardedAnnotations are the pod annotations only podsg-controller may set, change or remove:
// the validating webhook (internal/webhook/pod.Validator) checks updates of these, and its
// match conditions ask it about exactly these, so one list serves both.
var GuardedAnnotations = []string{v1beta1.AnnotationPodENI, v1beta1.AnnotationSecurityGroups}

// validateConditions let the apiserver call the validating webhook only for the requests it
// could deny: a pod created with vpc.amazonaws.com/pod-eni, or an update that sets, changes or
// removes it or podsg.io/security-groups, by anyone but controllerUser. Every other pod
// creation (nearly all) and update skips a webhook round trip that would only say yes: on a
// busy apiserver that is a third of the webhook calls of a pod creation, and the controller's
// own annotation writes. The handler still decides (internal/webhook/pod.Validator); the
// expressions only say when it is worth asking, and cannot fail on any pod (an error would
// refuse the request, fail-closed), guarding every map access with has() and "in".
func validateConditions(controllerUser string) []admissionregistrationv1.MatchCondition {
	has := func(obj, key string) string {
		return fmt.Sprintf("(has(%[1]s.metadata.annotations) && %[2]q in %[1]s.metadata.annotations)", obj, key)
	}
	changed := func(key string) string {
		return fmt.Sprintf("(%[1]s != %[2]s || (%[1]s && object.metadata.annotations[%[3]q] != oldObject.metadata.annotations[%[3]q]))",
			has("object", key), has("oldObject", key), key)
	}
	updates := make([]string, 0, len(GuardedAnnotations))
	for _, k := range GuardedAnnotations {
		updates = append(updates, changed(k))
	}
	conds := []admissionregistrationv1.MatchCondition{{
		Name: "touches-podsg-annotations",
		// On creation only pod-eni: the mutating webhook overwrites the groups annotation.
		Expression: fmt.Sprintf("request.operation == 'CREATE' ? %s : (%s)",
			has("object", v1beta1.AnnotationPodENI), strings.Join(updates, " || ")),
	}}
	if controllerUser != "" {
		conds = append(conds, admissionregistrationv1.MatchCondition{
			Name: "not-podsg-controller", Expression: fmt.Sprintf("request.userInfo.username != %q", controllerUser)})
	}
	return conds
}

// narrow is base and sel together (a label selector's terms are ANDed): sel's labels and
// expressions with base's expressions appended. base for a nil sel.
func narrow(base, sel *metav1.LabelSelector) *metav1.LabelSelector {
	if sel == nil {
		return base.DeepCopy()
	}
	out := sel.DeepCopy()
	out.MatchExpressions = append(out.MatchExpressions, base.DeepCopy().MatchExpressions...)
	return out
}

func (t target) clientConfig(path string) admissionregistrationv1.WebhookClientConfig {
	if t.url != "" {
		u := t.url + path
		return admissionregistrationv1.WebhookClientConfig{URL: &u, CABundle: t.caBundle}
	}
	return admissionregistrationv1.WebhookClientConfig{CABundle: t.caBundle, Service: &admissionregistrationv1.ServiceReference{
		Namespace: t.namespace, Name: t.service, Path: &path, Port: &t.port}}
}

func parseManifests() (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	mut := &admissionregistrationv1.MutatingWebhookConfiguration{}
	val := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(config.WebhookManifests), 4096)
	for _, into := range []any{mut, val} {
		if err := dec.Decode(into); err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("parsing generated webhook manifests: %w", err)
		}
	}
	if len(mut.Webhooks) == 0 || len(val.Webhooks) == 0 {
		return nil, nil, fmt.Errorf("generated webhook manifests lack a configuration")
	}
	return mut, val, nil
}
