using System.Text;
using QubesActors.AdminApi.Wire;
using Xunit;

namespace QubesActors.IntegrationTests;

/// <summary>docs/qubes-semantics.md §6.1, byte for byte.</summary>
public sealed class FramingTests
{
    private static byte[] B(string s) => Encoding.ASCII.GetBytes(s);

    private static AdminRequest Parse(byte[] bytes)
    {
        Assert.True(RequestFraming.TryParse(bytes, out var request, out var error), error?.Reason);
        return request!;
    }

    private static string Refusal(byte[] bytes)
    {
        Assert.False(RequestFraming.TryParse(bytes, out _, out var error));
        return error!.Reason;
    }

    [Fact]
    public void Request_is_split_into_method_arg_source_dest_and_payload()
    {
        var r = Parse(B("admin.vm.property.Set+netvm dom0 name work\0sys-firewall"));
        Assert.Equal(("admin.vm.property.Set", "netvm", "dom0", "work"), (r.Method, r.Arg, r.Source, r.Dest));
        Assert.Equal("sys-firewall", Encoding.ASCII.GetString(r.UntrustedPayload.Span));
    }

    [Fact]
    public void Argument_is_everything_after_the_first_plus()
    {
        var r = Parse(B("admin.vm.Shutdown+force+wait dom0 name work\0"));
        Assert.Equal(("admin.vm.Shutdown", "force+wait"), (r.Method, r.Arg));
        Assert.Equal("", Parse(B("admin.vm.List+ dom0 name dom0\0")).Arg);
        Assert.Equal(("admin.vm.List", ""), (Parse(B("admin.vm.List dom0 name dom0\0")).Method, Parse(B("admin.vm.List dom0 name dom0\0")).Arg));
    }

    [Fact]
    public void Header_is_split_at_the_first_nul_and_the_payload_keeps_its_nuls()
    {
        var r = Parse(B("admin.vm.feature.Set+x dom0 name work\0a\0b\0"));
        Assert.Equal(B("a\0b\0"), r.UntrustedPayload.ToArray());
    }

    [Fact]
    public void Keyword_adminvm_is_two_tokens_and_means_dom0()
    {
        var r = Parse(B("admin.vm.List+ dom0 keyword adminvm\0"));
        Assert.Equal("dom0", r.Dest);
    }

    [Theory]
    [InlineData("admin.vm.List+ dom0 name dom0", "no NUL")]
    [InlineData("admin.vm.List+ dom0 name\0", "expected 4")]
    [InlineData("admin.vm.List+ dom0 name dom0 extra\0", "expected 4")]
    [InlineData("admin.vm.List+ dom0  name dom0\0", "expected 4")]
    [InlineData("admin.vm.List+ dom0 uuid 0000\0", "destination type")]
    [InlineData("admin.vm.List+ dom0 keyword other\0", "destination type")]
    [InlineData("admin.vm.List+\tdom0 name dom0\0", "ASCII")]
    public void Framing_errors_are_refused(string request, string reason) =>
        Assert.Contains(reason, Refusal(B(request)));

    [Fact]
    public void Non_ascii_header_is_a_framing_error() =>
        Assert.Contains("ASCII", Refusal([.. B("admin.vm.List+ dom0 name w"), 0xc3, 0xa9, 0]));

    [Fact]
    public void Limit_is_65536_bytes_inclusive()
    {
        var header = B("admin.vm.notes.Set+ dom0 name work\0");
        var atLimit = new byte[RequestFraming.MaxRequestBytes];
        header.CopyTo(atLimit, 0);
        Assert.Equal(RequestFraming.MaxRequestBytes - header.Length, Parse(atLimit).UntrustedPayload.Length);
        var over = new byte[RequestFraming.MaxRequestBytes + 1];
        header.CopyTo(over, 0);
        Assert.Contains("longer than", Refusal(over));
    }

    [Fact]
    public void Client_request_is_what_qubesd_call_sends()
    {
        var bytes = new AdminRequest("admin.vm.property.Get", "netvm", "dom0", "work", ReadOnlyMemory<byte>.Empty).Encode();
        Assert.Equal(B("admin.vm.property.Get+netvm dom0 name work\0"), bytes);
    }

    [Fact]
    public void Ok_frame_is_0x30_0x00_and_the_content() =>
        Assert.Equal(B("0\0default=True type=vm "), AdminFrames.EncodeOk("default=True type=vm "));

    [Fact]
    public void Exception_frame_is_class_empty_traceback_message_each_nul_terminated() =>
        Assert.Equal(B("2\0QubesVMNotFoundError\0\0No such domain: 'x'\0"), AdminFrames.EncodeException("QubesVMNotFoundError", "No such domain: 'x'"));

    [Fact]
    public void Event_frame_has_subject_event_pairs_and_a_final_nul()
    {
        Assert.Equal(B("1\0work\0domain-start\0start_guid\0abc\0\0"),
            AdminFrames.EncodeEvent("work", "domain-start", [KeyValuePair.Create("start_guid", "abc")]));
        Assert.Equal(B("1\0\0connection-established\0\0"), AdminFrames.EncodeEvent("", "connection-established", []));
    }

    [Fact]
    public void Decoder_reads_back_every_frame_kind()
    {
        Assert.Equal("a\nb\n", ResponseDecoder.DecodeSingle(AdminFrames.EncodeOk("a\nb\n")).OkText);
        var error = Assert.IsType<AdminResponse.Error>(ResponseDecoder.DecodeSingle(AdminFrames.EncodeException("ProtocolError", "no such method")));
        Assert.Equal(("ProtocolError", "", "no such method"), (error.ClassName, error.Traceback, error.Message));

        byte[] stream = [.. AdminFrames.EncodeEvent("", "connection-established", []),
            .. AdminFrames.EncodeEvent("work", "property-set:netvm", [KeyValuePair.Create("name", "netvm"), KeyValuePair.Create("newvalue", ""), KeyValuePair.Create("oldvalue", "sys-net")])];
        Assert.True(ResponseDecoder.TryDecode(stream, atEof: false, out var first, out var used));
        Assert.Equal("connection-established", Assert.IsType<AdminResponse.Event>(first).Name);
        Assert.True(ResponseDecoder.TryDecode(stream.AsSpan(used), atEof: false, out var second, out var used2));
        var e = Assert.IsType<AdminResponse.Event>(second);
        Assert.Equal(("work", "property-set:netvm", "", "sys-net"), (e.Subject, e.Name, e.Argument("newvalue"), e.Argument("oldvalue")));
        Assert.Equal(stream.Length, used + used2);
        Assert.False(ResponseDecoder.TryDecode(stream.AsSpan(0, used - 1), atEof: false, out _, out _));
    }
}
