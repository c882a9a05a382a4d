package cli

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// parsePorts turns -p values ([ip:][hostPort:]containerPort[/proto], or
// the long form published=8080,target=80[,protocol=udp]) and --expose
// values (port[-port][/proto]) into the exposed ports and bindings, as
// docker/cli does with go-connections' nat.ParsePortSpecs.
func parsePorts(publish, expose []string) (network.PortSet, network.PortMap, error) {
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, raw := range publish {
		spec, err := standardPortNotation(raw)
		if err != nil {
			return nil, nil, err
		}
		mappings, err := parsePortSpec(spec)
		if err != nil {
			return nil, nil, err
		}
		for _, m := range mappings {
			exposed[m.port] = struct{}{}
			bindings[m.port] = append(bindings[m.port], m.binding)
		}
	}
	for _, e := range expose {
		pr, err := network.ParsePortRange(e)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid range format for --expose: %w", err)
		}
		for p := range pr.All() {
			exposed[p] = struct{}{}
		}
	}
	return exposed, bindings, nil
}

// standardPortNotation rewrites the long form of -p into the short one.
func standardPortNotation(publish string) (string, error) {
	if !strings.Contains(publish, "=") {
		return publish, nil
	}
	params := map[string]string{"protocol": "tcp"}
	for param := range strings.SplitSeq(publish, ",") {
		k, v, ok := strings.Cut(param, "=")
		if !ok || k == "" {
			return "", fmt.Errorf("invalid publish opts format (should be name=value but got '%s')", param)
		}
		params[k] = v
	}
	return fmt.Sprintf("%s:%s/%s", params["published"], params["target"], params["protocol"]), nil
}

type portMapping struct {
	port    network.Port
	binding network.PortBinding
}

// parsePortSpec is nat.ParsePortSpec: one short -p value, a container
// port range bound one to one to a host port range (or a single
// container port to a host range, from which the engine picks one).
func parsePortSpec(raw string) ([]portMapping, error) {
	ip, hostPort, containerPort := splitPortParts(raw)
	containerPort, proto, _ := strings.Cut(containerPort, "/")
	if containerPort == "" {
		return nil, fmt.Errorf("no port specified: %s<empty>", raw)
	}
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, errors.New("invalid proto: " + proto)
	}
	if ip != "" && ip[0] == '[' {
		rawIP, _, err := net.SplitHostPort(ip + ":")
		if err != nil {
			return nil, fmt.Errorf("invalid IP address %v: %w", ip, err)
		}
		ip = rawIP
	}
	var hostIP netip.Addr
	if ip != "" {
		if net.ParseIP(ip) == nil {
			return nil, errors.New("invalid IP address: " + ip)
		}
		var err error
		if hostIP, err = netip.ParseAddr(ip); err != nil {
			return nil, err
		}
	}
	start, end, err := parsePortRange(containerPort)
	if err != nil {
		return nil, errors.New("invalid containerPort: " + containerPort)
	}
	var hostStart, hostEnd int
	if hostPort != "" {
		if hostStart, hostEnd, err = parsePortRange(hostPort); err != nil {
			return nil, errors.New("invalid hostPort: " + hostPort)
		}
		if end-start != hostEnd-hostStart && end != start {
			return nil, fmt.Errorf("invalid ranges specified for container and host Ports: %s and %s", containerPort, hostPort)
		}
	}
	count := end - start + 1
	out := make([]portMapping, 0, count)
	for i := range count {
		hp := ""
		if hostPort != "" {
			hp = strconv.Itoa(hostStart + i)
			if count == 1 && hostStart != hostEnd {
				hp += "-" + strconv.Itoa(hostEnd)
			}
		}
		p, ok := network.PortFrom(uint16(start+i), network.IPProtocol(proto))
		if !ok {
			return nil, fmt.Errorf("invalid containerPort: %s", containerPort)
		}
		out = append(out, portMapping{port: p, binding: network.PortBinding{HostIP: hostIP, HostPort: hp}})
	}
	return out, nil
}

// splitPortParts splits ip:hostPort:containerPort from the right; the ip
// keeps any colons of an IPv6 address.
func splitPortParts(raw string) (ip, hostPort, containerPort string) {
	parts := strings.Split(raw, ":")
	switch n := len(parts); n {
	case 1:
		return "", "", parts[0]
	case 2:
		return "", parts[0], parts[1]
	default:
		return strings.Join(parts[:n-2], ":"), parts[n-2], parts[n-1]
	}
}

// parsePortRange is nat's: "80" or "8000-8010".
func parsePortRange(ports string) (int, int, error) {
	if ports == "" {
		return 0, 0, errors.New("empty string specified for ports")
	}
	start, end, ok := strings.Cut(ports, "-")
	s, err := parsePortNumber(start)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid start port '%s': %w", start, err)
	}
	if !ok || start == end {
		return s, s, nil
	}
	e, err := parsePortNumber(end)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid end port '%s': %w", end, err)
	}
	if e < s {
		return 0, 0, errors.New("invalid port range: " + ports)
	}
	return s, e, nil
}

func parsePortNumber(raw string) (int, error) {
	if raw == "" {
		return 0, errors.New("value is empty")
	}
	n, err := strconv.ParseInt(raw, 10, 0)
	if err != nil {
		var numErr *strconv.NumError
		if errors.As(err, &numErr) {
			err = numErr.Err
		}
		return 0, err
	}
	if n < 0 || n > 65535 {
		return 0, errors.New("value out of range (0–65535)")
	}
	return int(n), nil
}

// attachment is one --network: a target network and, in the long form
// (name=net,alias=a,ip=…), its endpoint settings. docker/cli's
// NetworkAttachmentOpts.
type attachment struct {
	target       string
	aliases      []string
	driverOpts   map[string]string
	links        []string
	ipv4, ipv6   netip.Addr
	linkLocalIPs []netip.Addr
	macAddress   string
	gwPriority   int
}

// networkValue is --network (and its hidden alias --net).
type networkValue struct{ values []attachment }

func (*networkValue) Type() string   { return "network" }
func (*networkValue) String() string { return "" }

var longNetworkRE = regexp.MustCompile(`\w+=\w+(,\w+=\w+)*`)

func (n *networkValue) Set(value string) error {
	if !longNetworkRE.MatchString(value) {
		n.values = append(n.values, attachment{target: value})
		return nil
	}
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return err
	}
	a := attachment{aliases: []string{}}
	for _, field := range fields {
		key, val, ok := strings.Cut(strings.ToLower(field), "=")
		if !ok || key == "" {
			return fmt.Errorf("invalid field %s", field)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "name":
			a.target = val
		case "alias":
			a.aliases = append(a.aliases, val)
		case "ip":
			if a.ipv4, err = netip.ParseAddr(val); err != nil {
				return err
			}
		case "ip6":
			if a.ipv6, err = netip.ParseAddr(val); err != nil {
				return err
			}
		case "mac-address":
			a.macAddress = val
		case "link-local-ip":
			ip, err := netip.ParseAddr(val)
			if err != nil {
				return err
			}
			a.linkLocalIPs = append(a.linkLocalIPs, ip)
		case "driver-opt":
			k, v, ok := strings.Cut(val, "=")
			if !ok || k == "" {
				return errors.New("invalid key value pair format in driver options")
			}
			if a.driverOpts == nil {
				a.driverOpts = map[string]string{}
			}
			a.driverOpts[strings.TrimSpace(k)] = strings.TrimSpace(v)
		case "gw-priority":
			if a.gwPriority, err = strconv.Atoi(val); err != nil {
				var numErr *strconv.NumError
				if errors.As(err, &numErr) {
					err = numErr.Err
				}
				return fmt.Errorf("invalid gw-priority (%s): %w", val, err)
			}
		default:
			return errors.New("invalid field key " + key)
		}
	}
	if a.target == "" {
		return errors.New("network name/id is not specified")
	}
	n.values = append(n.values, a)
	return nil
}

// mode is HostConfig.NetworkMode: the first network, "default" when none.
func (n *networkValue) mode() string {
	if len(n.values) == 0 {
		return network.NetworkDefault
	}
	return n.values[0].target
}

// endpoints is docker/cli's parseNetworkOpts: the endpoint settings per
// network, the first network taking --network-alias, --link, --ip, --ip6
// and --mac-address.
func (o *containerOptions) endpoints() (map[string]*network.EndpointSettings, error) {
	nets := o.netMode.values
	if len(nets) == 0 {
		nets = []attachment{{target: network.NetworkDefault}}
	}
	eps := make(map[string]*network.EndpointSettings, len(nets))
	var userDefined, builtin bool
	for i, a := range nets {
		if container.NetworkMode(a.target).IsUserDefined() {
			userDefined = true
		} else {
			builtin = true
		}
		if i == 0 {
			if err := o.applyEndpointFlags(&a); err != nil {
				return nil, err
			}
		}
		ep, err := endpointSettings(a)
		if err != nil {
			return nil, err
		}
		if _, ok := eps[a.target]; ok {
			return nil, fmt.Errorf("network %q is specified multiple times", a.target)
		}
		// One network without settings of its own gets no endpoint entry
		// (docker/cli leaves it to the daemon), except the implicit default.
		if i == 0 && len(o.netMode.values) == 1 && reflect.ValueOf(*ep).IsZero() {
			continue
		}
		eps[a.target] = ep
	}
	if userDefined && builtin {
		return nil, errors.New("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
	}
	return eps, nil
}

// applyEndpointFlags moves the single-network flags onto a, refusing them
// beside the same setting given in the long --network form.
func (o *containerOptions) applyEndpointFlags(a *attachment) error {
	switch {
	case len(a.aliases) > 0 && len(o.aliases.values) > 0:
		return errors.New("conflicting options: cannot specify both --network-alias and per-network alias")
	case len(a.links) > 0 && len(o.links.values) > 0:
		return errors.New("conflicting options: cannot specify both --link and per-network links")
	case a.ipv4.IsValid() && o.ipv4 != nil:
		return errors.New("conflicting options: cannot specify both --ip and per-network IPv4 address")
	case a.ipv6.IsValid() && o.ipv6 != nil:
		return errors.New("conflicting options: cannot specify both --ip6 and per-network IPv6 address")
	case a.macAddress != "" && o.macAddress != "":
		return errors.New("conflicting options: cannot specify both --mac-address and per-network MAC address")
	}
	if len(o.aliases.values) > 0 {
		a.aliases = append([]string(nil), o.aliases.values...)
	}
	// On a user-defined network a link is an alias of the endpoint; on the
	// default bridge it is a legacy link (HostConfig.Links).
	if container.NetworkMode(a.target).IsUserDefined() && len(o.links.values) > 0 {
		a.links = append([]string(nil), o.links.values...)
	}
	if ip, ok := netip.AddrFromSlice(o.ipv4.To4()); o.ipv4 != nil && ok {
		a.ipv4 = ip
	}
	if ip, ok := netip.AddrFromSlice(o.ipv6.To16()); o.ipv6 != nil && ok {
		a.ipv6 = ip
	}
	if o.macAddress != "" {
		a.macAddress = o.macAddress
	}
	return nil
}

// endpointSettings is docker/cli's parseNetworkAttachmentOpt.
func endpointSettings(a attachment) (*network.EndpointSettings, error) {
	if strings.TrimSpace(a.target) == "" {
		return nil, errors.New("no name set for network")
	}
	if !container.NetworkMode(a.target).IsUserDefined() {
		if len(a.aliases) > 0 {
			return nil, errors.New("network-scoped aliases are only supported for user-defined networks")
		}
		if len(a.links) > 0 {
			return nil, errors.New("links are only supported for user-defined networks")
		}
	}
	ep := &network.EndpointSettings{GwPriority: a.gwPriority, DriverOpts: a.driverOpts, Links: a.links}
	ep.Aliases = append(ep.Aliases, a.aliases...)
	if a.ipv4.IsValid() || a.ipv6.IsValid() || len(a.linkLocalIPs) > 0 {
		ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: a.ipv4, IPv6Address: a.ipv6, LinkLocalIPs: a.linkLocalIPs}
	}
	if a.macAddress != "" {
		mac, err := net.ParseMAC(strings.TrimSpace(a.macAddress))
		if err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", a.macAddress)
		}
		ep.MacAddress = network.HardwareAddr(mac)
	}
	return ep, nil
}
