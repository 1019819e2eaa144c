// Package faultsuite holds the fault-injection suite: the real agent binary,
// the fake commands in testdata/fakebin and the sink, all on loopback, each
// scenario bounded in time. The package has no code of its own; run it with
//
//	go test -race -v ./internal/faultsuite
//
// Each test logs what it measured (t.Logf), so -v prints the figures.
package faultsuite
