-- xsgw (XMPP <-> SIP gateway) as a Prosody external component (XEP-0114).
--
-- Copy this file to /etc/prosody/conf.d/xsgw.cfg.lua (Debian's prosody.cfg.lua
-- ends with Include "conf.d/*.cfg.lua"; elsewhere, add an Include of the copy)
-- and replace each placeholder below (a NAME between two @) with the value of
-- the key of that name in xsgw's [xmpp]:
--   COMPONENT  component  the domain xsgw owns, e.g. sip.example.com
--   HOST       host       the address Prosody listens on for components
--   PORT       port       the component port, usually 5347
--   SECRET     secret     a long random secret, e.g. from `openssl rand -hex 24`
-- A copy left unedited does not load (the port is no Lua), so no stock secret
-- goes live. The end-to-end tests include this file with only these replaced.
--
-- An included file starts in the global section, so the two options below are
-- global: they replace any component_ports or component_interfaces set in
-- prosody.cfg.lua and serve every external component of this Prosody.
component_ports = { @PORT@ }
component_interfaces = { "@HOST@" }

Component "@COMPONENT@"
    component_secret = "@SECRET@"
