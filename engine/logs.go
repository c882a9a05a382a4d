package engine

import (
	"context"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/logs"
)

// Logs reads a container's json-file log. With o.Follow it keeps reading
// until the container stops (or ctx ends), as `docker logs -f` does.
func (e *Engine) Logs(ctx context.Context, ref string, o logs.ReadOptions, fn func(logs.Entry) error) error {
	info, err := e.Info(ctx, ref)
	if err != nil {
		return err
	}
	if info.HostConfig.LogConfig.Type == "none" {
		return errorf(errdefs.ErrInvalidArgument, `configured logging driver does not support reading`)
	}
	if o.Follow && !info.Running() {
		o.Follow = false
	}
	if o.Follow {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			e.Wait(ctx, info.ID, "not-running")
			time.Sleep(200 * time.Millisecond) // let the reader drain what the shim wrote last
			cancel()
		}()
	}
	err = logs.Read(ctx, e.logPath(info.ID), o, fn)
	if errdefs.IsNotFound(err) {
		return nil // nothing logged yet
	}
	if err != nil && ctx.Err() != nil {
		return nil
	}
	return err
}
