// Package controllertest holds what podsg's controller and webhook tests share on a real
// apiserver: a manager wired to a testenv control plane, and fixtures. Polling on observable
// state is testenv.Eventually.
package controllertest
