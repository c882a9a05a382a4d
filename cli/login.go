package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/registry"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/spf13/cobra"
)

// defaultServer is how docker names Docker Hub in config.json.
const defaultServer = "https://index.docker.io/v1/"

// dockerConfig loads config.json from $DOCKER_CONFIG or ~/.docker, read
// afresh each time (docker/cli's config.Dir caches the variable).
func dockerConfig() (*configfile.ConfigFile, error) {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(home, ".docker")
	}
	return config.Load(dir)
}

// serverAddress is the config.json key for a server argument, as docker
// writes it: the host[:port] without scheme or path, or Docker Hub's URL.
func serverAddress(s string) string {
	if s == "" || s == "docker.io" || s == "index.docker.io" || s == "registry-1.docker.io" || s == defaultServer {
		return defaultServer
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	host, _, _ := strings.Cut(s, "/")
	return host
}

func loginCmd(g *globals) *cobra.Command {
	var user, pass string
	var passStdin bool
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stderr := cmd.ErrOrStderr()
			if pass != "" {
				fmt.Fprintln(stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
				if passStdin {
					return fmt.Errorf("--password and --password-stdin are mutually exclusive: %w", errdefs.ErrInvalidArgument)
				}
			}
			if passStdin {
				if user == "" {
					return fmt.Errorf("Must provide --username with --password-stdin: %w", errdefs.ErrInvalidArgument)
				}
				b, err := io.ReadAll(bufio.NewReader(cmd.InOrStdin()))
				if err != nil {
					return err
				}
				pass = strings.TrimRight(string(b), "\r\n")
			}
			if user == "" || pass == "" {
				return fmt.Errorf("Cannot perform an interactive login from a non TTY device: %w", errdefs.ErrNotImplemented)
			}
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			addr := serverAddress(server)
			host := addr
			if addr == defaultServer {
				host = "index.docker.io"
			}
			if err := registry.New(registryOptions()...).Login(cmd.Context(), host, user, pass); err != nil {
				return err
			}
			cf, err := dockerConfig()
			if err != nil {
				return err
			}
			store := cf.GetCredentialsStore(addr)
			if err := store.Store(types.AuthConfig{Username: user, Password: pass, ServerAddress: addr}); err != nil {
				return fmt.Errorf("Error saving credentials: %w", err)
			}
			if cf.CredentialsStore == "" && cf.CredentialHelpers[addr] == "" {
				fmt.Fprintf(stderr, "WARNING! Your credentials are stored unencrypted in '%s'.\n"+
					"Configure a credential helper to remove this warning. See\n"+
					"https://docs.docker.com/go/credential-store/\n\n", cf.Filename)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Login Succeeded")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&user, "username", "u", "", "Username")
	f.StringVarP(&pass, "password", "p", "", "Password or Personal Access Token (PAT)")
	f.BoolVar(&passStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	return cmd
}

func logoutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			addr := serverAddress(server)
			cf, err := dockerConfig()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			helper := cf.CredentialsStore != "" || cf.CredentialHelpers[addr] != ""
			if _, ok := cf.AuthConfigs[addr]; !ok && !helper {
				fmt.Fprintf(out, "Not logged in to %s\n", addr)
				return nil
			}
			fmt.Fprintf(out, "Removing login credentials for %s\n", addr)
			if err := cf.GetCredentialsStore(addr).Erase(addr); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: could not erase credentials: %s: %v\n", addr, err)
			}
			return nil
		},
	}
}
