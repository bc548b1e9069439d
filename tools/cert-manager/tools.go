//go:build tools

package main

import _ "github.com/letsencrypt/pebble/v2/cmd/pebble"
