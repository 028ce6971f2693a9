// Package benchcmp holds benchmarks and tests that compare this module's
// packages with other implementations. It is a separate module so that
// those implementations never enter the main module's dependencies.
package benchcmp
