// Package layout holds no code: its test checks the import rules that the
// README's "How it is built" section states, so that they stay true.
package layout
