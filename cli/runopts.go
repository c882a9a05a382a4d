package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/logs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// containerOptions are the flags `berth create` and `berth run` share:
// docker create's flag set, less what berth cannot honour (--gpus, the
// blkio and realtime limits, Windows-only flags, --volume-driver). `run`
// adds -d, --sig-proxy and --detach-keys itself.
type containerOptions struct {
	name, pull, platform string
	quiet                bool

	attach, env, envFile, labels, labelFile      *listValue
	volumes, tmpfs, volumesFrom                  *listValue
	publish, expose, links, aliases              *listValue
	dns, dnsSearch, dnsOptions, extraHosts       *listValue
	capAdd, capDrop, groupAdd, securityOpt       *listValue
	storageOpt, logOpts, devices, deviceCgroupRs *listValue
	sysctls, annotations                         *mapValue
	ulimits                                      ulimitValue
	mounts                                       mountValue
	netMode                                      networkValue

	memory, memoryReservation, memorySwap, shmSize memBytes
	cpus                                           nanoCPUs
	cpuShares, cpuPeriod, cpuQuota                 int64
	cpusetCpus, cpusetMems                         string
	swappiness, pidsLimit                          int64
	oomKillDisable                                 bool
	oomScoreAdj                                    int

	privileged, publishAll, stdin, tty, readonlyRootfs, autoRemove, init bool
	pidMode, utsMode, usernsMode, cgroupnsMode, ipcMode                  string
	cidFile, entrypoint, hostname, domainname, user, workingDir          string
	macAddress                                                           string
	ipv4, ipv6                                                           net.IP
	restartPolicy, logDriver, cgroupParent, stopSignal, runtime          string
	stopTimeout                                                          int

	noHealthcheck                                                         bool
	healthCmd                                                             string
	healthInterval, healthTimeout, healthStartPeriod, healthStartInterval time.Duration
	healthRetries                                                         int
}

// addContainerFlags adds the flags of `berth create` (and the ones `berth
// run` shares) to fs, with docker's names, shorthands, defaults and help.
// It also stops flag parsing at the first argument (the image: what
// follows is the container's command) and adds a --help without -h,
// which is --hostname's.
func addContainerFlags(fs *pflag.FlagSet) *containerOptions {
	o := &containerOptions{
		attach: newList(validateAttach), env: newList(validateEnv), envFile: newList(nil),
		labels: newList(validateLabel), labelFile: newList(nil),
		volumes: newList(nil), tmpfs: newList(nil), volumesFrom: newList(nil),
		publish: newList(nil), expose: newList(nil), links: newList(validateLink), aliases: newList(nil),
		dns: newList(validateIP), dnsSearch: newList(validateDNSSearch), dnsOptions: newList(nil),
		extraHosts: newList(validateExtraHost),
		capAdd:     newList(nil), capDrop: newList(nil), groupAdd: newList(nil), securityOpt: newList(nil),
		storageOpt: newList(nil), logOpts: newList(nil), devices: newList(nil),
		deviceCgroupRs: newList(validateDeviceCgroupRule),
		sysctls:        newMap(validateSysctl), annotations: newMap(nil),
		memorySwap: memBytes{swap: true},
	}
	fs.SetInterspersed(false)
	fs.Bool("help", false, "Print usage")

	// Of create itself.
	fs.StringVar(&o.name, "name", "", "Assign a name to the container")
	fs.StringVar(&o.pull, "pull", "missing", `Pull image before creating ("always", "missing", "never")`)
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the pull output")
	fs.StringVar(&o.platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")

	// General purpose.
	fs.VarP(o.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	fs.Var(o.deviceCgroupRs, "device-cgroup-rule", "Add a rule to the cgroup allowed devices list")
	fs.Var(o.devices, "device", "Add a host device to the container")
	fs.VarP(o.env, "env", "e", "Set environment variables")
	fs.Var(o.envFile, "env-file", "Read in a file of environment variables")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.Var(o.groupAdd, "group-add", "Add additional groups to join")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&o.domainname, "domainname", "", "Container NIS domain name")
	fs.BoolVarP(&o.stdin, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.VarP(o.labels, "label", "l", "Set meta data on a container")
	fs.Var(o.labelFile, "label-file", "Read in a line delimited file of labels")
	fs.BoolVar(&o.readonlyRootfs, "read-only", false, "Mount the container's root filesystem as read only")
	fs.StringVar(&o.restartPolicy, "restart", string(container.RestartPolicyDisabled), "Restart policy to apply when a container exits")
	fs.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.Var(o.sysctls, "sysctl", "Sysctl options")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.Var(&o.ulimits, "ulimit", "Ulimit options")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVarP(&o.workingDir, "workdir", "w", "", "Working directory inside the container")
	fs.BoolVar(&o.autoRemove, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")

	// Security.
	fs.Var(o.capAdd, "cap-add", "Add Linux capabilities")
	fs.Var(o.capDrop, "cap-drop", "Drop Linux capabilities")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	fs.Var(o.securityOpt, "security-opt", "Security Options")
	fs.StringVar(&o.usernsMode, "userns", "", "User namespace to use")
	fs.StringVar(&o.cgroupnsMode, "cgroupns", "", `Cgroup namespace to use (host|private)
'host':    Run the container in the Docker host's cgroup namespace
'private': Run the container in its own private cgroup namespace
'':        Use the cgroup namespace as configured by the
           default-cgroupns-mode option on the daemon (default)`)

	// Network and ports.
	fs.Var(o.extraHosts, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	fs.Var(o.dns, "dns", "Set custom DNS servers")
	fs.Var(o.dnsOptions, "dns-opt", "Set DNS options")
	fs.Var(o.dnsOptions, "dns-option", "Set DNS options")
	_ = fs.MarkHidden("dns-opt")
	fs.Var(o.dnsSearch, "dns-search", "Set custom DNS search domains")
	fs.Var(o.expose, "expose", "Expose a port or a range of ports")
	fs.IPVar(&o.ipv4, "ip", nil, "IPv4 address (e.g., 172.30.100.104)")
	fs.IPVar(&o.ipv6, "ip6", nil, "IPv6 address (e.g., 2001:db8::33)")
	fs.Var(o.links, "link", "Add link to another container")
	fs.StringVar(&o.macAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fs.VarP(o.publish, "publish", "p", "Publish a container's port(s) to the host")
	fs.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fs.Var(&o.netMode, "net", "Connect a container to a network")
	fs.Var(&o.netMode, "network", "Connect a container to a network")
	_ = fs.MarkHidden("net")
	fs.Var(o.aliases, "net-alias", "Add network-scoped alias for the container")
	fs.Var(o.aliases, "network-alias", "Add network-scoped alias for the container")
	_ = fs.MarkHidden("net-alias")

	// Logging and storage.
	fs.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container")
	fs.Var(o.logOpts, "log-opt", "Log driver options")
	fs.Var(o.storageOpt, "storage-opt", "Storage driver options for the container")
	fs.Var(o.tmpfs, "tmpfs", "Mount a tmpfs directory")
	fs.Var(o.volumesFrom, "volumes-from", "Mount volumes from the specified container(s)")
	fs.VarP(o.volumes, "volume", "v", "Bind mount a volume")
	fs.Var(&o.mounts, "mount", "Attach a filesystem mount to the container")

	// Health checks.
	fs.StringVar(&o.healthCmd, "health-cmd", "", "Command to run to check health")
	fs.DurationVar(&o.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	fs.IntVar(&o.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	fs.DurationVar(&o.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStartPeriod, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStartInterval, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	fs.BoolVar(&o.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")

	// Resources.
	fs.StringVar(&o.cidFile, "cidfile", "", "Write the container ID to the file")
	fs.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fs.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Var(&o.cpus, "cpus", "Number of CPUs")
	fs.VarP(&o.memory, "memory", "m", "Memory limit")
	fs.Var(&o.memoryReservation, "memory-reservation", "Memory soft limit")
	fs.Var(&o.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.Int64Var(&o.swappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	fs.BoolVar(&o.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	fs.IntVar(&o.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")

	// Namespaces, cgroups, runtime.
	fs.StringVar(&o.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")
	fs.StringVar(&o.ipcMode, "ipc", "", "IPC mode to use")
	fs.StringVar(&o.pidMode, "pid", "", "PID namespace to use")
	fs.Var(&o.shmSize, "shm-size", "Size of /dev/shm")
	fs.StringVar(&o.utsMode, "uts", "", "UTS namespace to use")
	fs.StringVar(&o.runtime, "runtime", "", "Runtime to use for this container")
	fs.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fs.Var(o.annotations, "annotation", "Add an annotation to the container (passed through to the OCI runtime)")
	return o
}

// containerSpec is one parsed request of `berth create` or `berth run`.
type containerSpec struct {
	ID         string // chosen ahead (run), or empty
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
	Networking *network.NetworkingConfig
	Platform   string // --platform, checked to parse
	Pull       string // --pull: "missing", "always" or "never"
	Quiet      bool   // -q: no pull progress
	CIDFile    string // --cidfile, also HostConfig.ContainerIDFile
}

// parse turns the flags set in fs plus the positional args (IMAGE
// [COMMAND] [ARG...]) into a request, as docker/cli's parse does. Its
// errors are docker's words, of class errdefs.ErrInvalidArgument (the
// caller prints them and exits 125). Where Docker's daemon fills a default
// the request records the daemon's value: NetworkMode "bridge" for none
// or "default", restart policy "no", log driver "json-file".
func (o *containerOptions) parse(fs *pflag.FlagSet, args []string) (*containerSpec, error) {
	spec, err := o.build(fs, args)
	if err != nil {
		return nil, fmt.Errorf("%w%w", err, quiet{errdefs.ErrInvalidArgument})
	}
	return spec, nil
}

func (o *containerOptions) build(fs *pflag.FlagSet, args []string) (*containerSpec, error) {
	if len(args) == 0 {
		return nil, errors.New("requires at least 1 argument")
	}
	switch o.pull {
	case "always", "missing", "never":
	default:
		return nil, fmt.Errorf("invalid pull option: '%s': must be one of %q, %q or %q", o.pull, "always", "missing", "never")
	}
	if o.platform != "" {
		if _, err := image.ParsePlatform(o.platform); err != nil {
			return nil, errors.New(strings.TrimSuffix(err.Error(), ": "+errdefs.ErrInvalidArgument.Error()))
		}
	}
	if o.macAddress != "" {
		if _, err := net.ParseMAC(strings.TrimSpace(o.macAddress)); err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", o.macAddress)
		}
	}
	if s := o.swappiness; s != -1 && (s < 0 || s > 100) {
		return nil, fmt.Errorf("invalid value: %d. Valid memory swappiness range is 0-100", s)
	}
	hc, err := o.hostConfig(fs)
	if err != nil {
		return nil, err
	}
	cfg, err := o.config(fs, args)
	if err != nil {
		return nil, err
	}
	if hc.Binds, cfg.Volumes, err = splitVolumes(o.volumes.values); err != nil {
		return nil, err
	}
	if cfg.ExposedPorts, hc.PortBindings, err = parsePorts(o.publish.values, o.expose.values); err != nil {
		return nil, err
	}
	eps, err := o.endpoints()
	if err != nil {
		return nil, err
	}
	// Docker's daemon takes "default" as the platform's default network,
	// "bridge", and keys its endpoint settings so.
	if hc.NetworkMode == "" || hc.NetworkMode.IsDefault() {
		hc.NetworkMode = network.NetworkBridge
		if ep, ok := eps[network.NetworkDefault]; ok {
			delete(eps, network.NetworkDefault)
			eps[network.NetworkBridge] = ep
		}
	}
	return &containerSpec{
		Name:       o.name,
		Config:     cfg,
		HostConfig: hc,
		Networking: &network.NetworkingConfig{EndpointsConfig: eps},
		Platform:   o.platform,
		Pull:       o.pull,
		Quiet:      o.quiet,
		CIDFile:    o.cidFile,
	}, nil
}

// config is the container's Config: the image, its command and the
// settings that travel with it.
func (o *containerOptions) config(fs *pflag.FlagSet, args []string) (*container.Config, error) {
	env, err := readKVFiles(o.envFile.values, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	// A bare -e KEY whose KEY berth's environment lacks sets nothing.
	for _, e := range o.env.values {
		if strings.Contains(e, "=") {
			env = append(env, e)
		}
	}
	labelList, err := readKVFiles(o.labelFile.values, nil)
	if err != nil {
		return nil, fmt.Errorf("--label-file: %w", err)
	}
	labels := map[string]string{}
	for _, l := range append(labelList, o.labels.values...) {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	health, err := o.healthcheck()
	if err != nil {
		return nil, err
	}
	cfg := &container.Config{
		Hostname:     o.hostname,
		Domainname:   o.domainname,
		User:         o.user,
		Tty:          o.tty,
		OpenStdin:    o.stdin,
		AttachStdin:  o.stdin || slices.Contains(o.attach.values, "stdin"),
		AttachStdout: len(o.attach.values) == 0 || slices.Contains(o.attach.values, "stdout"),
		AttachStderr: len(o.attach.values) == 0 || slices.Contains(o.attach.values, "stderr"),
		Env:          env,
		Image:        args[0],
		WorkingDir:   o.workingDir,
		Labels:       labels,
		StopSignal:   o.stopSignal,
		Healthcheck:  health,
	}
	if len(args) > 1 {
		cfg.Cmd = args[1:]
	}
	if o.entrypoint != "" {
		cfg.Entrypoint = []string{o.entrypoint}
	} else if fs.Changed("entrypoint") {
		cfg.Entrypoint = []string{""} // --entrypoint "" clears the image's
	}
	if fs.Changed("stop-timeout") {
		t := o.stopTimeout
		cfg.StopTimeout = &t
	}
	// With stdin open and attached, close it when the client detaches.
	cfg.StdinOnce = cfg.OpenStdin && cfg.AttachStdin
	return cfg, nil
}

// healthcheck is Config.Healthcheck: NONE for --no-healthcheck, the
// --health-* settings over the image's, or nil for the image's own.
func (o *containerOptions) healthcheck() (*container.HealthConfig, error) {
	set := o.healthCmd != "" || o.healthInterval != 0 || o.healthTimeout != 0 ||
		o.healthStartPeriod != 0 || o.healthRetries != 0 || o.healthStartInterval != 0
	if o.noHealthcheck {
		if set {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !set {
		return nil, nil
	}
	for _, c := range []struct {
		name     string
		negative bool
	}{
		{"interval", o.healthInterval < 0},
		{"timeout", o.healthTimeout < 0},
		{"retries", o.healthRetries < 0},
		{"start-period", o.healthStartPeriod < 0},
		{"start-interval", o.healthStartInterval < 0},
	} {
		if c.negative {
			return nil, fmt.Errorf("--health-%s cannot be negative", c.name)
		}
	}
	h := &container.HealthConfig{
		Interval:      o.healthInterval,
		Timeout:       o.healthTimeout,
		StartPeriod:   o.healthStartPeriod,
		StartInterval: o.healthStartInterval,
		Retries:       o.healthRetries,
	}
	if o.healthCmd != "" {
		h.Test = []string{"CMD-SHELL", o.healthCmd}
	}
	return h, nil
}

// hostConfig is the HostConfig, less binds, ports and the network's
// default, which build adds.
func (o *containerOptions) hostConfig(fs *pflag.FlagSet) (*container.HostConfig, error) {
	pidMode := container.PidMode(o.pidMode)
	if !pidMode.Valid() {
		return nil, errors.New("--pid: invalid PID mode")
	}
	utsMode := container.UTSMode(o.utsMode)
	if !utsMode.Valid() {
		return nil, errors.New("--uts: invalid UTS mode")
	}
	usernsMode := container.UsernsMode(o.usernsMode)
	if !usernsMode.Valid() {
		return nil, errors.New("--userns: invalid USER mode")
	}
	cgroupnsMode := container.CgroupnsMode(o.cgroupnsMode)
	if !cgroupnsMode.Valid() {
		return nil, errors.New("--cgroupns: invalid CGROUP mode")
	}
	if ipc := container.IpcMode(o.ipcMode); !ipc.Valid() {
		return nil, fmt.Errorf("invalid IPC mode: %v", ipc)
	}
	restart, err := parseRestartPolicy(o.restartPolicy)
	if err != nil {
		return nil, err
	}
	if o.autoRemove && !restart.IsNone() {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	logConfig, err := o.logConfig()
	if err != nil {
		return nil, err
	}
	securityOpt, masked, readonly, err := parseSecurityOpts(o.securityOpt.values)
	if err != nil {
		return nil, err
	}
	storageOpt := map[string]string{}
	for _, s := range o.storageOpt.values {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, errors.New("invalid storage option")
		}
		storageOpt[k] = v
	}
	resources, err := o.resources()
	if err != nil {
		return nil, err
	}
	hc := &container.HostConfig{
		ContainerIDFile: o.cidFile,
		LogConfig:       logConfig,
		NetworkMode:     container.NetworkMode(o.netMode.mode()),
		RestartPolicy:   restart,
		AutoRemove:      o.autoRemove,
		VolumesFrom:     o.volumesFrom.values,
		Annotations:     o.annotations.values,
		CapAdd:          o.capAdd.values,
		CapDrop:         o.capDrop.values,
		CgroupnsMode:    cgroupnsMode,
		DNS:             toAddrs(o.dns.values),
		DNSOptions:      o.dnsOptions.orEmpty(),
		DNSSearch:       o.dnsSearch.orEmpty(),
		ExtraHosts:      o.extraHosts.values,
		GroupAdd:        o.groupAdd.values,
		IpcMode:         container.IpcMode(o.ipcMode),
		Links:           o.links.values,
		OomScoreAdj:     o.oomScoreAdj,
		PidMode:         pidMode,
		Privileged:      o.privileged,
		PublishAllPorts: o.publishAll,
		ReadonlyRootfs:  o.readonlyRootfs,
		SecurityOpt:     securityOpt,
		StorageOpt:      storageOpt,
		Tmpfs:           parseTmpfs(o.tmpfs.values),
		UTSMode:         utsMode,
		UsernsMode:      usernsMode,
		ShmSize:         o.shmSize.n,
		Sysctls:         o.sysctls.values,
		Runtime:         o.runtime,
		Resources:       resources,
		Mounts:          o.mounts.values,
		MaskedPaths:     masked,
		ReadonlyPaths:   readonly,
	}
	if fs.Changed("init") {
		init := o.init
		hc.Init = &init
	}
	return hc, nil
}

// resources are the cgroup limits; docker's daemon refuses --cpus beside
// --cpu-period or --cpu-quota, so berth does here.
func (o *containerOptions) resources() (container.Resources, error) {
	if o.cpus != 0 && o.cpuPeriod != 0 {
		return container.Resources{}, errors.New("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if o.cpus != 0 && o.cpuQuota != 0 {
		return container.Resources{}, errors.New("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	}
	devices := make([]container.DeviceMapping, 0, len(o.devices.values))
	var cdi []string
	for _, d := range o.devices.values {
		if isCDIName(d) {
			cdi = append(cdi, d)
			continue
		}
		m, err := parseDevice(d)
		if err != nil {
			return container.Resources{}, err
		}
		devices = append(devices, m)
	}
	var requests []container.DeviceRequest
	if len(cdi) > 0 {
		requests = []container.DeviceRequest{{Driver: "cdi", DeviceIDs: cdi}}
	}
	swappiness, oomKillDisable, pidsLimit := o.swappiness, o.oomKillDisable, o.pidsLimit
	return container.Resources{
		CgroupParent:      o.cgroupParent,
		Memory:            o.memory.n,
		MemoryReservation: o.memoryReservation.n,
		MemorySwap:        o.memorySwap.n,
		MemorySwappiness:  &swappiness,
		OomKillDisable:    &oomKillDisable,
		NanoCPUs:          int64(o.cpus),
		CPUShares:         o.cpuShares,
		CPUPeriod:         o.cpuPeriod,
		CPUQuota:          o.cpuQuota,
		CpusetCpus:        o.cpusetCpus,
		CpusetMems:        o.cpusetMems,
		PidsLimit:         &pidsLimit,
		Ulimits:           o.ulimits.list(),
		DeviceCgroupRules: o.deviceCgroupRs.values,
		Devices:           devices,
		DeviceRequests:    requests,
	}, nil
}

// logConfig is --log-driver with its --log-opt values. The json-file
// options are checked here as package logs reads them; other drivers are
// the engine's to accept or refuse.
func (o *containerOptions) logConfig() (container.LogConfig, error) {
	c := container.LogConfig{Type: o.logDriver, Config: map[string]string{}}
	for _, kv := range o.logOpts.values {
		k, v, _ := strings.Cut(kv, "=")
		c.Config[k] = v
	}
	switch c.Type {
	case "none":
		if len(o.logOpts.values) > 0 {
			return container.LogConfig{}, fmt.Errorf("invalid logging opts for driver %s", c.Type)
		}
	case "", "json-file":
		c.Type = "json-file"
		if _, err := logs.ParseOptions(c.Config); err != nil {
			return container.LogConfig{}, errors.New(strings.TrimSuffix(err.Error(), ": "+errdefs.ErrInvalidArgument.Error()))
		}
	}
	return c, nil
}
