package controller_test

import (
	"testing"

	"github.com/podsg/podsg/internal/testenv"
)

// TestMain removes the binaries the tests built (testenv.Build).
func TestMain(m *testing.M) { testenv.Main(m) }
