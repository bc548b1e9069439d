//go:build tools

// Package tools pins the review tools: dyff (semantic YAML diff for `make diff`) and actionlint
// (checks the GitHub Actions workflow), in a module of their own.
package tools

import (
	_ "github.com/homeport/dyff/cmd/dyff"
	_ "github.com/rhysd/actionlint/cmd/actionlint"
)
