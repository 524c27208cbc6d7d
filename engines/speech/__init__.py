"""Speech to mouth motion: features, the lip-sync network, voice gate, articulation and the
streaming core that joins them (``stream.SpeechMotion``)."""
