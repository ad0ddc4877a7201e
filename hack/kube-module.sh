# kube-module.sh, sourced by hack/kube-bin.sh and hack/e2e-bin.sh: kube_module NAME writes, in the
# current directory, a throwaway Go module NAME that requires k8s.io/kubernetes $KUBE_VERSION.
# k8s.io/kubernetes requires its staging modules at v0.0.0 (replaced by ./staging/... in its own
# go.mod), so each gets a replace to its published tag, v0.<minor>.<patch>. Modules absent from
# the proxy (sample-*) are not required by anything built from it.
kube_module() {
  local staging="v0.${KUBE_VERSION#v1.}" modfile
  printf 'module %s\n\ngo 1.26.0\n' "$1" >go.mod
  printf 'package main\n\nfunc main() {}\n' >main.go
  go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" >/dev/null
  modfile="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBE_VERSION.mod"
  {
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo "replace ("
    awk '/^replace \(/{f=1;next} f&&/^\)/{f=0} f&&/=>/{print $1}' "$modfile" |
      grep -v -e sample-cli-plugin -e sample-controller |
      while read -r m; do echo "	$m => $m $staging"; done
    echo ")"
  } >>go.mod
}
