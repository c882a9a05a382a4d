package engine

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMergeUpdate(t *testing.T) {
	const mb = 1 << 20
	pids := int64(50)
	tests := []struct {
		name    string
		cur     container.Resources
		auto    bool
		req     UpdateRequest
		want    container.Resources
		wantErr string
	}{
		{name: "memory within the doubled swap", cur: container.Resources{Memory: 64 * mb},
			req:  UpdateRequest{Resources: container.Resources{Memory: 100 * mb}},
			want: container.Resources{Memory: 100 * mb, MemorySwap: 128 * mb}},
		{name: "memory above the doubled swap", cur: container.Resources{Memory: 64 * mb},
			req:     UpdateRequest{Resources: container.Resources{Memory: 200 * mb}},
			wantErr: "Memory limit should be smaller than already set memoryswap limit"},
		{name: "memory without any limit before", req: UpdateRequest{Resources: container.Resources{Memory: 200 * mb}},
			wantErr: "Memory limit should be smaller than already set memoryswap limit"},
		{name: "memory with swap", req: UpdateRequest{Resources: container.Resources{Memory: 200 * mb, MemorySwap: -1}},
			want: container.Resources{Memory: 200 * mb, MemorySwap: -1}},
		{name: "swap below memory", cur: container.Resources{Memory: 64 * mb},
			req:     UpdateRequest{Resources: container.Resources{MemorySwap: 32 * mb}},
			wantErr: "Minimum memoryswap limit should be larger than memory limit"},
		{name: "swap without memory", req: UpdateRequest{Resources: container.Resources{MemorySwap: 32 * mb}},
			wantErr: "You should always set the Memory limit"},
		{name: "unlimited swap without memory", req: UpdateRequest{Resources: container.Resources{MemorySwap: -1}},
			want: container.Resources{}},
		{name: "reservation above memory", cur: container.Resources{Memory: 64 * mb, MemorySwap: -1},
			req:     UpdateRequest{Resources: container.Resources{MemoryReservation: 100 * mb}},
			wantErr: "Minimum memory limit can not be less than memory reservation limit"},
		{name: "cpus after a period", cur: container.Resources{CPUPeriod: 50000},
			req:     UpdateRequest{Resources: container.Resources{NanoCPUs: 1e9}},
			wantErr: "Nano CPUs cannot be updated as CPU Period has already been set"},
		{name: "quota after cpus", cur: container.Resources{NanoCPUs: 1e9},
			req:     UpdateRequest{Resources: container.Resources{CPUQuota: 5000}},
			wantErr: "CPU Quota cannot be updated as NanoCPUs has already been set"},
		{name: "cpu and pids", cur: container.Resources{CPUShares: 100},
			req:  UpdateRequest{Resources: container.Resources{NanoCPUs: 5e8, CpusetCpus: "0", PidsLimit: &pids}},
			want: container.Resources{CPUShares: 100, NanoCPUs: 5e8, CpusetCpus: "0", PidsLimit: &pids}},
		{name: "restart of --rm", auto: true, req: UpdateRequest{RestartPolicy: container.RestartPolicy{Name: "always"}},
			wantErr: "Restart policy cannot be updated because AutoRemove is enabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := &container.HostConfig{Resources: tt.cur, AutoRemove: tt.auto}
			err := mergeUpdate(hc, tt.req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("mergeUpdate err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := hc.Resources
			if got.Memory != tt.want.Memory || got.MemorySwap != tt.want.MemorySwap || got.NanoCPUs != tt.want.NanoCPUs ||
				got.CPUShares != tt.want.CPUShares || got.CpusetCpus != tt.want.CpusetCpus || (got.PidsLimit == nil) != (tt.want.PidsLimit == nil) {
				t.Fatalf("mergeUpdate = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestVerifyUpdate(t *testing.T) {
	for _, tt := range []struct {
		r       container.Resources
		p       container.RestartPolicy
		wantErr string
	}{
		{r: container.Resources{Memory: 1 << 20}, wantErr: "Minimum memory limit allowed is 6MB"},
		{r: container.Resources{NanoCPUs: 1e9, CPUPeriod: 100000}, wantErr: "Nano CPUs and CPU Period cannot both be set"},
		{r: container.Resources{NanoCPUs: 1e15}, wantErr: "range of CPUs is from 0.01 to"},
		{r: container.Resources{CPUPeriod: 10}, wantErr: "CPU cfs period can not be less than 1ms"},
		{r: container.Resources{CPUQuota: 10}, wantErr: "CPU cfs quota can not be less than 1ms"},
		{r: container.Resources{CpusetCpus: "a-b"}, wantErr: "Invalid value a-b for cpuset cpus"},
		{r: container.Resources{CpusetCpus: "0,9999"}, wantErr: "Requested CPUs are not available - requested 0,9999"},
		{p: container.RestartPolicy{Name: "always", MaximumRetryCount: 2}, wantErr: "maximum retry count"},
		{r: container.Resources{CpusetCpus: "0", CPUShares: 5}, p: container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}},
	} {
		err := verifyUpdate(UpdateRequest{Resources: tt.r, RestartPolicy: tt.p})
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("verifyUpdate(%+v, %+v) = %v, want %q", tt.r, tt.p, err, tt.wantErr)
		}
	}
}

func TestSetResources(t *testing.T) {
	pids := int64(-1)
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	setResources(r, container.Resources{Memory: 64 << 20, MemoryReservation: 32 << 20, NanoCPUs: 1500000000, CPUShares: 1, PidsLimit: &pids})
	if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 128<<20 || *r.Memory.Reservation != 32<<20 {
		t.Errorf("memory %d %d %d", *r.Memory.Limit, *r.Memory.Swap, *r.Memory.Reservation)
	}
	if *r.CPU.Period != 100000 || *r.CPU.Quota != 150000 || *r.CPU.Shares != 2 {
		t.Errorf("cpu %d %d %d", *r.CPU.Period, *r.CPU.Quota, *r.CPU.Shares)
	}
	if *r.Pids.Limit != -1 || len(r.Devices) != 1 {
		t.Errorf("pids %d, devices %v", *r.Pids.Limit, r.Devices)
	}
}
