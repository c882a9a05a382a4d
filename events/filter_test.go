package events

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
)

func TestFilter(t *testing.T) {
	ctr := New(ContainerEventType, "start", "0123abcd", map[string]string{
		"name": "web", "image": "docker.io/library/nginx:1.25", "com.example.team": "infra", "tier": "front",
	})
	exec := New(ContainerEventType, "exec_start: sh -c true", "0123abcd", map[string]string{"name": "web"})
	health := New(ContainerEventType, "health_status: healthy", "0123abcd", map[string]string{"name": "web"})
	img := New(ImageEventType, "tag", "sha256:feed", map[string]string{"name": "busybox:latest"})
	vol := New(VolumeEventType, "create", "data", map[string]string{"driver": "local"})
	net := New(NetworkEventType, "connect", "9f9f", map[string]string{"name": "bridge", "container": "0123abcd"})
	all := map[string]Message{"ctr": ctr, "exec": exec, "health": health, "img": img, "vol": vol, "net": net}
	for _, tt := range []struct {
		filters []string
		want    string // names of all that match, in order
	}{
		{nil, "ctr,exec,health,img,net,vol"},
		{[]string{"type=container"}, "ctr,exec,health"},
		{[]string{"type=volume", "type=network"}, "net,vol"},            // one key: OR
		{[]string{"type=container", "event=start"}, "ctr"},              // two keys: AND
		{[]string{"event=start", "event=tag"}, "ctr,img"},               // OR
		{[]string{"event=exec_start"}, "exec"},                          // a detail after the colon
		{[]string{"event=health_status"}, "health"},                     //
		{[]string{"event=exec"}, ""},                                    // no prefix otherwise
		{[]string{"container=web"}, "ctr,exec,health"},                  // by name
		{[]string{"container=0123"}, "ctr,exec,health"},                 // by ID prefix
		{[]string{"container=we", "container=nope"}, "ctr,exec,health"}, // name prefix, OR
		{[]string{"container=nope"}, ""},                                //
		{[]string{"image=nginx"}, "ctr"},                                // a container's image without tag
		{[]string{"image=docker.io/library/nginx:1.25"}, "ctr"},         // as given
		{[]string{"image=nginx:1.25"}, ""},                              // docker compares the name or the stripped one only
		{[]string{"image=busybox"}, "img"},                              // an image event's name
		{[]string{"image=sha256:feed"}, "img"},                          // an image event's ID
		{[]string{"label=com.example.team"}, "ctr"},                     // key
		{[]string{"label=com.example.team=infra"}, "ctr"},               // key=value
		{[]string{"label=com.example.team=ops"}, ""},                    //
		{[]string{"label=tier=front", "label=com.example.team"}, "ctr"}, // labels: AND
		{[]string{"label=tier=front", "label=com.example.team=x"}, ""},  //
		{[]string{"volume=data"}, "vol"},                                //
		{[]string{"volume=da", "type=volume"}, "vol"},                   //
		{[]string{"network=bridge"}, "net"},                             //
		{[]string{"network=9f"}, "net"},                                 //
		{[]string{"scope=local"}, "ctr,exec,health,img,net,vol"},        //
		{[]string{"scope=swarm"}, ""},                                   //
		{[]string{" Type = image "}, "img"},                             // key case and spaces, as the docker CLI
	} {
		t.Run(strings.Join(tt.filters, "&"), func(t *testing.T) {
			f, err := ParseFilters(tt.filters)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, name := range []string{"ctr", "exec", "health", "img", "net", "vol"} {
				if f.Match(all[name]) {
					got = append(got, name)
				}
			}
			if g := strings.Join(got, ","); g != tt.want {
				t.Errorf("filters %q match %q, want %q", tt.filters, g, tt.want)
			}
		})
	}
	if !(Filter{}).Match(ctr) {
		t.Error("the zero Filter refuses an event")
	}
}

func TestParseFiltersErrors(t *testing.T) {
	for _, tt := range []struct{ arg, msg string }{
		{"foo=bar", "Invalid filter 'foo'"},
		{"FOO=bar", "Invalid filter 'foo'"},
		{"container", "bad format of filter (expected name=value)"},
		{"until=1h", "Invalid filter 'until'"},
	} {
		_, err := ParseFilters([]string{"type=container", tt.arg})
		if err == nil || err.Error() != tt.msg || !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseFilters(%q) = %v, want %q (invalid argument)", tt.arg, err, tt.msg)
		}
	}
	if _, err := ParseFilters([]string{""}); err != nil {
		t.Errorf("empty filter: %v", err)
	}
}
