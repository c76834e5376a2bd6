-- mipvpn.lua: Wireshark / tshark dissector for mipvpn's non-standard Mobile IPv4 parts.
--
--   tshark -X lua_script:docs/wireshark/mipvpn.lua -r capture.pcapng -V
--   (Wireshark: copy to ~/.local/lib/wireshark/plugins/ or use the same -X option)
--
-- 1. Route-optimisation binding messages (layouts of draft-ietf-mobileip-optim-11 §4).
--    IANA gave 16-19 to RFC 4881/4857, so mipvpn uses EXPERIMENTAL types from the
--    unassigned range: defaults 240-243 (controller/proto/mip.py BINDING_*; change them
--    with the mipvpn.bw_type ... mipvpn.back_type preferences if you configure others).
--      Binding Warning      Type(8) Reserved(24) HomeAddr(32) TargetAddr(32)*n
--      Binding Request      Type(8) Reserved(24) HomeAddr(32) Identification(64)
--      Binding Update       Type(8) A|I|M|G|Rsv(4) Lifetime(16) HomeAddr(32) CoA(32)
--                           Identification(64) Extensions
--      Binding Acknowledge  Type(8) Reserved(16) Status(8) HomeAddr(32) Identification(64)
--    Found on UDP 434 (this script sits in front of Wireshark's "mip" dissector there and
--    hands every other message type to it), on the ports of the mipvpn.ports preference,
--    and anywhere else by a strict heuristic (mipvpn_udp, can be disabled).
-- 2. mipvpn's vendor extensions, vendor 32473 (RFC 5612 documentation PEN, used until
--    mipvpn has its own; controller/proto/mip.py, mininet_scripts/mn_client.py):
--      CVSE (type 38, RFC 3115) vendor types (controller/proto/mip.py CVSE_*):
--        1 previous FA care-of address (IPv4, in an RRQ after a move),
--        2 service update (empty, in an RRQ: claim 24),
--        3 VPN tunnel (in a Binding Update): sub-TLVs SubType(8) Length(8) Value.
--        In RRQs Wireshark's mip dissector shows the raw value; a postdissector adds
--        the "mipvpn CVSE" tree with the decoded value.
--      NVSE (type 134, RFC 3115): registered in Wireshark's mip.nvse_ext table; vendor
--        type 4: MN-FA key generation nonce reply, in an RRP (controller/proto/mip_keys.py).
-- The Diameter vendor AVPs are a dictionary, not Lua: docs/wireshark/dictionary-mipvpn.xml.

local VENDOR_ID = 32473

local p = Proto("mipvpn", "mipvpn experimental Mobile IPv4")

p.prefs.bw_type = Pref.uint("Binding Warning type", 240, "Message type of Binding Warning")
p.prefs.breq_type = Pref.uint("Binding Request type", 241, "Message type of Binding Request")
p.prefs.bu_type = Pref.uint("Binding Update type", 242, "Message type of Binding Update")
p.prefs.back_type = Pref.uint("Binding Acknowledge type", 243,
                              "Message type of Binding Acknowledge")
p.prefs.ports = Pref.range("UDP ports", "434", "UDP ports carrying Mobile IPv4 control "
                           .. "(other message types go to Wireshark's mip dissector)", 65535)

local BACK_STATUS = {
    [0] = "Accepted", [128] = "Unspecified", [129] = "Administratively prohibited",
    [130] = "Insufficient resources", [131] = "Sender failed authentication",
    [133] = "Identification mismatch", [134] = "Poorly formed Binding Update",
}

local EXT_NAMES = {
    [0] = "Pad", [32] = "Mobile-Home Authentication", [33] = "Mobile-Foreign Authentication",
    [34] = "Foreign-Home Authentication",
    [35] = "Route Optimisation Authentication (experimental, RO08 §4.5)",
    [36] = "Generalized Authentication",
    [38] = "Critical Vendor/Organization Specific", [131] = "Mobile Node NAI",
    [132] = "MN-FA Challenge", [134] = "Normal Vendor/Organization Specific",
}

local CVSE_TYPES = { [1] = "Previous FA care-of address", [2] = "Service update",
                     [3] = "VPN tunnel" }
local TUNNEL_SUBTYPES = {
    [1] = "Tunnel id", [2] = "End A gateway", [3] = "End A address", [4] = "End A selector",
    [5] = "End B gateway", [6] = "End B address", [7] = "End B selector",
    [8] = "IKE proposal", [9] = "ESP proposal", [10] = "Hidden PSK",
    [11] = "QoS rate (kbit/s)", [12] = "QoS DSCP", [13] = "Initiator",
}
local NVSE_TYPES = { [4] = "MN-FA key generation nonce reply (RFC 3957 AAA subtype data: Lifetime, SPI, nonce)" }

local f = {
    type = ProtoField.uint8("mipvpn.type", "Message Type", base.DEC),
    reserved = ProtoField.bytes("mipvpn.reserved", "Reserved"),
    flags = ProtoField.uint8("mipvpn.flags", "Flags", base.HEX),
    flag_a = ProtoField.bool("mipvpn.flags.a", "Acknowledge requested (A)", 8, nil, 0x80),
    flag_i = ProtoField.bool("mipvpn.flags.i", "Identification present (I)", 8, nil, 0x40),
    flag_m = ProtoField.bool("mipvpn.flags.m", "Minimal encapsulation (M)", 8, nil, 0x20),
    flag_g = ProtoField.bool("mipvpn.flags.g", "GRE encapsulation (G)", 8, nil, 0x10),
    flag_rsv = ProtoField.uint8("mipvpn.flags.reserved", "Reserved", base.HEX, nil, 0x0F),
    lifetime = ProtoField.uint16("mipvpn.lifetime", "Lifetime", base.DEC),
    status = ProtoField.uint8("mipvpn.status", "Status", base.DEC, BACK_STATUS),
    homeaddr = ProtoField.ipv4("mipvpn.homeaddr", "Home Address"),
    coa = ProtoField.ipv4("mipvpn.coa", "Care-of Address"),
    target = ProtoField.ipv4("mipvpn.target", "Target Address"),
    ident = ProtoField.uint64("mipvpn.ident", "Identification", base.HEX),
    ext = ProtoField.bytes("mipvpn.ext", "Extension"),
    ext_type = ProtoField.uint8("mipvpn.ext.type", "Extension Type", base.DEC, EXT_NAMES),
    ext_subtype = ProtoField.uint8("mipvpn.ext.subtype", "Subtype", base.DEC),
    ext_len = ProtoField.uint16("mipvpn.ext.len", "Extension Length", base.DEC),
    ext_spi = ProtoField.uint32("mipvpn.ext.spi", "SPI", base.HEX),
    ext_auth = ProtoField.bytes("mipvpn.ext.auth", "Authenticator"),
    ext_data = ProtoField.bytes("mipvpn.ext.data", "Data"),
    ext_nai = ProtoField.string("mipvpn.ext.nai", "NAI"),
    vendor_id = ProtoField.uint32("mipvpn.vse.vendor_id", "Vendor/Org ID", base.DEC),
    cvse_type = ProtoField.uint16("mipvpn.cvse.type", "mipvpn CVSE Type", base.DEC, CVSE_TYPES),
    cvse_prev_coa = ProtoField.ipv4("mipvpn.cvse.previous_coa", "Previous FA care-of address"),
    cvse_value = ProtoField.bytes("mipvpn.cvse.value", "mipvpn CVSE Value"),
    tun_sub = ProtoField.uint8("mipvpn.tunnel.subtype", "Sub-Type", base.DEC, TUNNEL_SUBTYPES),
    tun_len = ProtoField.uint8("mipvpn.tunnel.length", "Length", base.DEC),
    tun_text = ProtoField.string("mipvpn.tunnel.text", "Value"),
    tun_addr = ProtoField.ipv4("mipvpn.tunnel.address", "Address"),
    tun_prefix = ProtoField.uint8("mipvpn.tunnel.prefixlen", "Prefix length", base.DEC),
    tun_uint = ProtoField.uint32("mipvpn.tunnel.uint", "Value", base.DEC),
    tun_bytes = ProtoField.bytes("mipvpn.tunnel.bytes", "Value"),
    nvse_type = ProtoField.uint16("mipvpn.nvse.type", "mipvpn NVSE Type", base.DEC, NVSE_TYPES),
    nvse_value = ProtoField.bytes("mipvpn.nvse.value", "mipvpn NVSE Value"),
}
local type_field_values = {}
p.fields = f

local ex_malformed = ProtoExpert.new("mipvpn.malformed", "Malformed mipvpn message",
                                     expert.group.MALFORMED, expert.severity.ERROR)
local ex_unknown_ext = ProtoExpert.new("mipvpn.ext.unknown", "Unknown extension",
                                       expert.group.UNDECODED, expert.severity.WARN)
p.experts = { ex_malformed, ex_unknown_ext }

local function names()
    return {
        [p.prefs.bw_type] = "Binding Warning", [p.prefs.breq_type] = "Binding Request",
        [p.prefs.bu_type] = "Binding Update", [p.prefs.back_type] = "Binding Acknowledge",
    }
end

-- ------------------------------------------------------------------ structure checks

-- true when [off, len) is a well-formed extension list (RFC 5944 §1.9, long formats 36/38)
local function extensions_ok(tvb, off, len)
    while off < len do
        local t = tvb(off, 1):uint()
        if t == 0 then
            off = off + 1
        elseif t == 36 or t == 38 then
            if off + 4 > len then return false end
            off = off + 4 + tvb(off + 2, 2):uint()
        else
            if off + 2 > len then return false end
            off = off + 2 + tvb(off + 1, 1):uint()
        end
    end
    return off == len
end

-- message name when the bytes have our layout, else nil
local function classify(tvb)
    local len = tvb:reported_length_remaining()
    if len < 1 or tvb:captured_len() < len then return nil end
    local t = tvb(0, 1):uint()
    local prefs = p.prefs
    if t == prefs.bw_type then
        if len >= 8 and len % 4 == 0 and tvb(1, 3):uint() == 0 then return "bw" end
    elseif t == prefs.breq_type then
        if len == 16 and tvb(1, 3):uint() == 0 then return "breq" end
    elseif t == prefs.back_type then
        if len == 16 and tvb(1, 2):uint() == 0 then return "back" end
    elseif t == prefs.bu_type then
        if len >= 20 and extensions_ok(tvb, 20, len) then return "bu" end
    end
    return nil
end

local function is_binding_type(t)
    return t == p.prefs.bw_type or t == p.prefs.breq_type or t == p.prefs.bu_type
        or t == p.prefs.back_type
end

-- ------------------------------------------------------------------ extensions

local TEXT_SUBTYPES = { [1] = true, [2] = true, [5] = true, [8] = true, [9] = true,
                        [13] = true }

-- CVSE type 3: SubType(8) Length(8) Value, repeated (controller/proto/mip.py TS_*)
local function add_tunnel_tlvs(tree, range)
    local off, len = 0, range:len()
    while off + 2 <= len do
        local st, sl = range(off, 1):uint(), range(off + 1, 1):uint()
        if off + 2 + sl > len then
            tree:add_proto_expert_info(ex_malformed, "VPN tunnel sub-TLV overruns the extension")
            return
        end
        local t = tree:add(f.ext_data, range(off, 2 + sl))
        t:set_text(string.format("%s (%d)", TUNNEL_SUBTYPES[st] or "Unknown sub-TLV", st))
        t:add(f.tun_sub, range(off, 1))
        t:add(f.tun_len, range(off + 1, 1))
        if sl > 0 then
            local v = range(off + 2, sl)
            if TEXT_SUBTYPES[st] then
                t:add(f.tun_text, v)
                t:append_text(": " .. v:string())
            elseif (st == 3 or st == 6) and sl == 4 then
                t:add(f.tun_addr, v)
                t:append_text(": " .. tostring(v:ipv4()))
            elseif (st == 4 or st == 7) and sl == 5 then
                t:add(f.tun_addr, range(off + 2, 4))
                t:add(f.tun_prefix, range(off + 6, 1))
                t:append_text(string.format(": %s/%d", tostring(range(off + 2, 4):ipv4()),
                                            range(off + 6, 1):uint()))
            elseif (st == 11 and sl == 4) or (st == 12 and sl == 1) then
                t:add(f.tun_uint, v)
                t:append_text(": " .. v:uint())
            else
                t:add(f.tun_bytes, v)
                if not TUNNEL_SUBTYPES[st] then t:add_proto_expert_info(ex_unknown_ext) end
            end
        end
        off = off + 2 + sl
    end
    if off ~= len then
        tree:add_proto_expert_info(ex_malformed, "truncated VPN tunnel sub-TLV")
    end
end

local function add_vse_value(tree, tvb, kind, vtype, range)
    if kind == "cvse" and vtype == 1 and range:len() == 4 then
        tree:add(f.cvse_prev_coa, range)
    elseif kind == "cvse" and vtype == 3 then
        add_tunnel_tlvs(tree:add(f.cvse_value, range), range)
    elseif kind == "cvse" then
        tree:add(f.cvse_value, range)
    else
        tree:add(f.nvse_value, range)
    end
end

local function dissect_extensions(tvb, tree, off, len)
    local ext_tree = tree:add(p, tvb(off, len - off), "Extensions")
    while off < len do
        local t = tvb(off, 1):uint()
        local name = EXT_NAMES[t] or ("Unknown extension " .. t)
        if t == 0 then
            ext_tree:add(f.ext_type, tvb(off, 1))
            off = off + 1
        else
            local hdr, elen, sub
            if t == 36 or t == 38 then
                hdr, elen = 4, tvb(off + 2, 2):uint()
            else
                hdr, elen = 2, tvb(off + 1, 1):uint()
            end
            local e = ext_tree:add(f.ext, tvb(off, hdr + elen))
            e:set_text("Extension: " .. name)
            e:add(f.ext_type, tvb(off, 1))
            if hdr == 4 then
                if t == 36 then e:add(f.ext_subtype, tvb(off + 1, 1)) end
                e:add(f.ext_len, tvb(off + 2, 2))
            else
                e:add(f.ext_len, tvb(off + 1, 1))
            end
            local body = off + hdr
            if (t == 32 or t == 33 or t == 34 or t == 35 or t == 36) and elen >= 4 then
                e:add(f.ext_spi, tvb(body, 4))
                if elen > 4 then e:add(f.ext_auth, tvb(body + 4, elen - 4)) end
            elseif t == 131 and elen > 0 then
                e:add(f.ext_nai, tvb(body, elen))
            elseif t == 38 and elen >= 6 then
                e:add(f.vendor_id, tvb(body, 4))
                e:add(f.cvse_type, tvb(body + 4, 2))
                if elen > 6 then
                    add_vse_value(e, tvb, "cvse", tvb(body + 4, 2):uint(), tvb(body + 6, elen - 6))
                end
            elseif t == 134 and elen >= 8 then
                e:add(f.vendor_id, tvb(body + 2, 4))
                e:add(f.nvse_type, tvb(body + 6, 2))
                if elen > 8 then e:add(f.nvse_value, tvb(body + 8, elen - 8)) end
            elseif elen > 0 then
                e:add(f.ext_data, tvb(body, elen))
                if not EXT_NAMES[t] then e:add_proto_expert_info(ex_unknown_ext) end
            end
            off = body + elen
        end
    end
end

-- ------------------------------------------------------------------ binding messages

local function dissect_binding(tvb, pinfo, tree, kind)
    local len = tvb:reported_length_remaining()
    local t = tvb(0, 1):uint()
    local name = names()[t]
    pinfo.cols.protocol = "mipvpn"
    local tr = tree:add(p, tvb(0, len), "mipvpn " .. name .. " (experimental type " .. t .. ")")
    local ti = tr:add(f.type, tvb(0, 1))
    ti:append_text(" (" .. name .. ")")
    local home = tvb(4, 4):ipv4()
    if kind == "bw" then
        tr:add(f.reserved, tvb(1, 3))
        tr:add(f.homeaddr, tvb(4, 4))
        local n = (len - 8) / 4
        for i = 0, n - 1 do tr:add(f.target, tvb(8 + 4 * i, 4)) end
        pinfo.cols.info = string.format("%s: HoA=%s targets=%d", name, tostring(home), n)
    elseif kind == "breq" then
        tr:add(f.reserved, tvb(1, 3))
        tr:add(f.homeaddr, tvb(4, 4))
        tr:add(f.ident, tvb(8, 8))
        pinfo.cols.info = string.format("%s: HoA=%s", name, tostring(home))
    elseif kind == "back" then
        tr:add(f.reserved, tvb(1, 2))
        tr:add(f.status, tvb(3, 1))
        tr:add(f.homeaddr, tvb(4, 4))
        tr:add(f.ident, tvb(8, 8))
        local st = tvb(3, 1):uint()
        pinfo.cols.info = string.format("%s: HoA=%s Status=%s (%d)", name, tostring(home),
                                        BACK_STATUS[st] or "?", st)
    else -- bu
        local ft = tr:add(f.flags, tvb(1, 1))
        ft:add(f.flag_a, tvb(1, 1))
        ft:add(f.flag_i, tvb(1, 1))
        ft:add(f.flag_m, tvb(1, 1))
        ft:add(f.flag_g, tvb(1, 1))
        ft:add(f.flag_rsv, tvb(1, 1))
        tr:add(f.lifetime, tvb(2, 2))
        tr:add(f.homeaddr, tvb(4, 4))
        tr:add(f.coa, tvb(8, 4))
        tr:add(f.ident, tvb(12, 8))
        if len > 20 then dissect_extensions(tvb, tr, 20, len) end
        pinfo.cols.info = string.format("%s: HoA=%s CoA=%s Lifetime=%d", name, tostring(home),
                                        tostring(tvb(8, 4):ipv4()), tvb(2, 2):uint())
    end
    return len
end

local mip_dissector = Dissector.get("mip")

function p.dissector(tvb, pinfo, tree)
    if tvb:len() < 1 then return 0 end
    local kind = classify(tvb)
    if kind then return dissect_binding(tvb, pinfo, tree, kind) end
    if is_binding_type(tvb(0, 1):uint()) then
        pinfo.cols.protocol = "mipvpn"
        local tr = tree:add(p, tvb(), "mipvpn binding message")
        tr:add(f.type, tvb(0, 1))
        tr:add_proto_expert_info(ex_malformed, "Malformed mipvpn binding message (bad length "
                                 .. "or reserved bits)")
        return tvb:len()
    end
    return mip_dissector:call(tvb, pinfo, tree)
end

local function heuristic(tvb, pinfo, tree)
    local kind = classify(tvb)
    if not kind then return false end
    dissect_binding(tvb, pinfo, tree, kind)
    return true
end
p:register_heuristic("udp", heuristic)

local udp_table = DissectorTable.get("udp.port")
local registered_ports = nil
local function register_ports()
    if registered_ports then udp_table:remove(registered_ports, p) end
    registered_ports = p.prefs.ports
    udp_table:add(registered_ports, p)
end
register_ports()
function p.prefs_changed() register_ports() end

-- ------------------------------------------------------------------ NVSE (mip.nvse_ext)

local p_nvse = Proto("mipvpn_nvse", "mipvpn NVSE (vendor 32473)")
function p_nvse.dissector(tvb, pinfo, tree)
    -- tvb: NVSE-Type(16) NVSE-Value (after the Vendor/Org-ID)
    if tvb:len() < 2 then return 0 end
    local tr = tree:add(p_nvse, tvb())
    tr:add(f.nvse_type, tvb(0, 2))
    if tvb:len() > 2 then tr:add(f.nvse_value, tvb(2)) end
    return tvb:len()
end
DissectorTable.get("mip.nvse_ext"):add(VENDOR_ID, p_nvse)

-- ------------------------------------------------------------------ CVSE (postdissector)

local p_cvse = Proto("mipvpn_cvse", "mipvpn CVSE (vendor 32473)")
local fe_cvse_vid = Field.new("mip.ext.cvse.vendor_id")
local fe_cvse_type = Field.new("mip.ext.cvse.vendor_type")
local fe_cvse_value = Field.new("mip.ext.cvse.vendor_value")

function p_cvse.dissector(tvb, pinfo, tree)
    local vids = { fe_cvse_vid() }
    if #vids == 0 then return end
    local types = { fe_cvse_type() }
    local values = { fe_cvse_value() }
    -- Wireshark adds vendor_type/value only for vendors it does not decode itself, so
    -- pair them by position: the value follows its type, the type follows its vendor id.
    local ti, vi = 1, 1
    for _, vid in ipairs(vids) do
        local vtype, value = types[ti], nil
        if vtype and vtype.offset == vid.offset + 4 then
            ti = ti + 1
            if values[vi] and values[vi].offset == vtype.offset + 2 then
                value = values[vi]
                vi = vi + 1
            end
            if vid.value == VENDOR_ID then
                local tr = tree:add(p_cvse, vid.range, "mipvpn CVSE (vendor 32473)")
                tr:add(f.cvse_type, vtype.range)
                if value then add_vse_value(tr, tvb, "cvse", vtype.value, value.range) end
            end
        end
    end
end
register_postdissector(p_cvse)
