-- Prosody: register xsgw as an external component (XEP-0114).
-- Add to prosody.cfg.lua (or Include this file); xsgw's [xmpp] component
-- must equal the name and [xmpp] secret the component_secret below.
component_ports = { 5347 }
component_interfaces = { "127.0.0.1" }

Component "sip.example.com"
    component_secret = "CHANGE-ME"
