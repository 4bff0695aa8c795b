"""Rendering one report instance: its checks evaluated, its template filled in the sandbox, the Markdown
turned into the email's HTML (theme CSS inlined) and plain-text part, its charts drawn to PNG and its
agenda items kept as data. The result, a ``RenderedEmail``, is finished: delivery only sends bytes."""
