package testimage

import "testing"

func TestBuild(t *testing.T) {
	Build(t, DefaultTag)
}
