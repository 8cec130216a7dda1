namespace QubesActors.Cli.Shell;

/// <summary>
/// Where lines that arrive on their own (watched events, watch status) go. While the line editor owns the
/// terminal they wait here, and the editor prints them above its prompt on its next poll; otherwise they are
/// written at once. One lock orders both, so a line is never lost between the two.
/// </summary>
public sealed class NoticeBoard(Action<string> writeNow)
{
    private readonly Lock _lock = new();
    private readonly Queue<string> _pending = new();
    private bool _editing;

    public void Post(string line)
    {
        lock (_lock)
        {
            if (_editing)
                _pending.Enqueue(line);
            else
                writeNow(line);
        }
    }

    public bool HasPending
    {
        get
        {
            lock (_lock)
                return _pending.Count > 0;
        }
    }

    public void BeginEditing()
    {
        lock (_lock)
            _editing = true;
    }

    /// <summary>The lines posted while editing, oldest first; the editor prints them.</summary>
    public IReadOnlyList<string> TakePending()
    {
        lock (_lock)
        {
            var lines = _pending.ToList();
            _pending.Clear();
            return lines;
        }
    }

    /// <summary>Leaves editing; what arrived since the last poll is written now.</summary>
    public void EndEditing()
    {
        lock (_lock)
        {
            _editing = false;
            while (_pending.TryDequeue(out var line))
                writeNow(line);
        }
    }
}
