package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/testenv"
)

func TestFindImage(t *testing.T) {
	ctx := context.Background()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.PushImage(t, reg, "library/busybox:1", testenv.BusyboxImage(t))
	e, _ := newEngine(t, "overlay")
	name := reg.Host + "/library/busybox:1"
	res, err := e.Pull(ctx, name, engine.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Image.ID()
	for _, q := range []string{name, id.String(), id.Encoded(), id.Encoded()[:12], reg.Host + "/library/busybox@" + res.Image.Target.Digest.String()} {
		rec, err := e.FindImage(ctx, q)
		if err != nil || rec.Config != id {
			t.Errorf("FindImage(%q) = %v, %v; want config %s", q, rec.Config, err, id)
		}
		if err == nil {
			img, err := e.ResolveImage(ctx, rec)
			if err != nil || img.ID() != id {
				t.Errorf("ResolveImage(%q) = %v, %v", q, img.ID(), err)
			}
		}
	}
	for _, q := range []string{"busybox", reg.Host + "/library/busybox:2", "0123456789ab"} {
		_, err := e.FindImage(ctx, q)
		if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "No such image: ") {
			t.Errorf("FindImage(%q) = %v, want No such image", q, err)
		}
	}
}
