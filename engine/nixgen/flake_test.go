package nixgen_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/testtool"
)

// TestFlakeOutputs calls flake.nix's outputs with stub inputs whose
// nixosSystem, darwinSystem and homeManagerConfiguration return (a
// summary of) their arguments, and checks that every machine is listed
// under the right configurations with its module and the overlay.
func TestFlakeOutputs(t *testing.T) {
	testtool.Require(t, "nix-instantiate", "nix-bin")
	for name, file := range fleets(t) {
		t.Run(name, func(t *testing.T) {
			f, _, dir, stubs := stubbed(t, file)
			os.WriteFile(filepath.Join(dir, "stub-nixpkgs.nix"), []byte(`{ system, overlays }: { inherit system; overlays = builtins.length overlays; }`), 0o644)
			src := fmt.Sprintf(`let
  s = %s;
  flake = import ./flake.nix;
  # pkgs names the machine (its file, the last module): homes take it
  system = kind: args: { inherit kind; modules = s.clean args.modules; specialArgs = builtins.attrNames args.specialArgs;
    pkgs.of = s.clean (builtins.elemAt args.modules (builtins.length args.modules - 1)); };
  inputs = {
    self = outputs;
    nixpkgs-darwin.outPath = "stub:nixpkgs-darwin";
    nixpkgs = { outPath = ./stub-nixpkgs.nix; lib = { nixosSystem = system "nixos"; composeManyExtensions = layers: { layers = builtins.length layers; }; }; };
    nix-darwin.lib.darwinSystem = system "darwin";
    home-manager.lib.homeManagerConfiguration = args: { pkgs = args.pkgs; modules = s.clean args.modules; extraSpecialArgs = builtins.attrNames args.extraSpecialArgs; };
  };
  outputs = flake.outputs inputs;
in {
  inputs = builtins.attrNames flake.inputs;
  description = flake.description;
  overlay = outputs.overlays.default;
  nixos = outputs.nixosConfigurations or { };
  darwin = outputs.darwinConfigurations or { };
  homes = outputs.homeConfigurations or { };
}`, stubs)
			var got struct {
				Inputs      []string
				Description string
				Overlay     map[string]any
				NixOS       map[string]map[string]any
				Darwin      map[string]map[string]any
				Homes       map[string]map[string]any
			}
			if err := evalNix(t, dir, src, &got); err != nil {
				t.Fatal(err)
			}
			// Four composed layers plus one per flake overlay.
			layers := 4
			for _, o := range f.Overlays {
				if o.Kind == model.OverlayFlake {
					layers++
				}
			}
			if got.Overlay["layers"] != float64(layers) {
				t.Errorf("overlay composes %v layers, want %d", got.Overlay["layers"], layers)
			}
			var wantInputs []string
			for _, c := range f.Channels {
				wantInputs = append(wantInputs, c.Name)
				if c.DarwinURL != "" {
					wantInputs = append(wantInputs, c.Name+"-darwin")
				}
			}
			for _, in := range f.Inputs {
				wantInputs = append(wantInputs, in.Name)
			}
			if strings.Join(sorted(wantInputs), " ") != strings.Join(got.Inputs, " ") {
				t.Errorf("flake inputs %v, want %v", got.Inputs, sorted(wantInputs))
			}
			overlayModule := map[string]any{"nixpkgs": map[string]any{"overlays": []any{map[string]any{"layers": float64(layers)}}}}
			wantHomes := map[string]bool{}
			for _, m := range f.Machines {
				configs, kind := got.NixOS, "nixos"
				if m.Class == model.Darwin {
					configs, kind = got.Darwin, "darwin"
				}
				c, ok := configs[m.Name]
				if !ok {
					t.Errorf("machine %s is not in %sConfigurations", m.Name, kind)
					continue
				}
				machineFile := "path:machines/" + string(m.Class) + "/" + m.Name + ".nix"
				modules := []any{overlayModule, machineFile}
				if c := f.Channel("nixpkgs"); m.Class == model.Darwin && c != nil && c.DarwinURL != "" {
					// nix-darwin builds from the channel's darwin branch
					darwinPkgs := map[string]any{"nixpkgs": map[string]any{
						"source": "stub:nixpkgs-darwin",
						"flake":  map[string]any{"source": "stub:nixpkgs-darwin"}}}
					modules = []any{overlayModule, darwinPkgs, machineFile}
				}
				want := map[string]any{"kind": kind, "specialArgs": []any{"inputs"}, "modules": modules,
					"pkgs": map[string]any{"of": machineFile}}
				if !reflect.DeepEqual(normalize(c), normalize(want)) {
					t.Errorf("%s: %v, want %v", m.Name, c, want)
				}
				for _, u := range m.Users {
					if len(f.User(u).Home) > 0 {
						wantHomes[u+"@"+m.Name] = true
						h := got.Homes[u+"@"+m.Name]
						var modules []any
						if _, err := os.Stat(filepath.Join(dir, "homes/users", u+".nix")); err == nil {
							modules = append(modules, "path:homes/users/"+u+".nix")
						}
						for _, ft := range m.Features {
							if _, err := os.Stat(filepath.Join(dir, "modules/home", ft+".nix")); err == nil {
								modules = append(modules, "path:modules/home/"+ft+".nix")
							}
						}
						if m.Home != nil {
							modules = append(modules, "path:homes/machines/"+m.Name+".nix")
						}
						homeDir := "/home/" + u
						if m.Class == model.Darwin {
							homeDir = "/Users/" + u
						}
						modules = append(modules, map[string]any{"home": map[string]any{"username": u, "homeDirectory": homeDir}})
						// the machine's own package set
						wantH := map[string]any{"extraSpecialArgs": []any{"inputs"}, "modules": modules,
							"pkgs": map[string]any{"of": machineFile}}
						if !reflect.DeepEqual(normalize(h), normalize(wantH)) {
							t.Errorf("home %s@%s: %v, want %v", u, m.Name, h, wantH)
						}
					}
				}
			}
			if len(got.NixOS)+len(got.Darwin) != len(f.Machines) {
				t.Errorf("%d configurations for %d machines", len(got.NixOS)+len(got.Darwin), len(f.Machines))
			}
			if len(got.Homes) != len(wantHomes) {
				t.Errorf("homeConfigurations %v, want %v", keys(got.Homes), wantHomes)
			}
		})
	}
}

func sorted(xs []string) []string {
	out := append([]string(nil), xs...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return sorted(out)
}
