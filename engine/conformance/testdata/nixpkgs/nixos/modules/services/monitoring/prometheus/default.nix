# services.prometheus.* as declared in nixpkgs'
# nixos/modules/services/monitoring/prometheus/default.nix (the server, with
# scrapeConfigs typed as upstream's scrape_config submodule: job_name,
# intervals, static_configs of targets and labels ... no freeform keys), and
# services.prometheus.exporters.node.* from .../prometheus/exporters.nix
# (the options every exporter has: enable, port, listenAddress, extraFlags,
# openFirewall, firewallFilter, user, group) and .../exporters/node.nix
# (enabledCollectors, disabledCollectors). With openFirewall the exporter's
# port is opened, as upstream does.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.prometheus;
  opt = type: mkOption {
    type = types.nullOr type;
    default = null;
  };
  staticConfig = types.submodule {
    options = {
      targets = mkOption { type = types.listOf types.str; };
      labels = mkOption {
        type = types.attrsOf types.str;
        default = { };
      };
    };
  };
  relabelConfig = types.submodule {
    options = {
      source_labels = opt (types.listOf types.str);
      separator = opt types.str;
      target_label = opt types.str;
      regex = opt types.str;
      modulus = opt types.int;
      replacement = opt types.str;
      action = opt (types.enum [ "replace" "lowercase" "uppercase" "keep" "drop" "hashmod" "labelmap" "labeldrop" "labelkeep" "keepequal" "dropequal" ]);
    };
  };
  scrapeConfig = types.submodule {
    options = {
      job_name = mkOption { type = types.str; };
      honor_labels = opt types.bool;
      honor_timestamps = opt types.bool;
      params = opt (types.attrsOf (types.listOf types.str));
      scrape_interval = opt types.str;
      scrape_timeout = opt types.str;
      metrics_path = opt types.str;
      scheme = opt (types.enum [ "http" "https" ]);
      basic_auth = opt (types.attrsOf types.str);
      bearer_token_file = opt types.str;
      tls_config = opt (types.attrsOf types.anything);
      static_configs = opt (types.listOf staticConfig);
      relabel_configs = opt (types.listOf relabelConfig);
      metric_relabel_configs = opt (types.listOf relabelConfig);
      sample_limit = opt types.int;
    };
  };
  exporter = name: port: extra: {
    enable = lib.mkEnableOption "the prometheus ${name} exporter";
    port = mkOption {
      type = types.port;
      default = port;
    };
    listenAddress = mkOption {
      type = types.str;
      default = "0.0.0.0";
    };
    extraFlags = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    openFirewall = mkOption {
      type = types.bool;
      default = false;
    };
    firewallFilter = mkOption {
      type = types.nullOr types.str;
      default = null;
    };
    user = mkOption {
      type = types.str;
      default = "${name}-exporter";
    };
    group = mkOption {
      type = types.str;
      default = "${name}-exporter";
    };
  } // extra;
  node = cfg.exporters.node;
in
{
  options.services.prometheus = {
    enable = lib.mkEnableOption "Prometheus monitoring daemon";
    package = lib.mkPackageOption pkgs "prometheus" { };
    port = mkOption {
      type = types.port;
      default = 9090;
    };
    listenAddress = mkOption {
      type = types.str;
      default = "0.0.0.0";
    };
    retentionTime = mkOption {
      type = types.nullOr types.str;
      default = null;
    };
    extraFlags = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    globalConfig = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
    scrapeConfigs = mkOption {
      type = types.listOf scrapeConfig;
      default = [ ];
    };
    rules = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    exporters.node = exporter "node" 9100 {
      enabledCollectors = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      disabledCollectors = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
    };
  };

  config = lib.mkIf (node.enable && node.openFirewall && node.firewallFilter == null) {
    networking.firewall.allowedTCPPorts = [ node.port ];
  };
}
