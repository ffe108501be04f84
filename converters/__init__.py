"""Data converters: LabelBox / DeeptraceReward / FakeClue / DeepfakeJudge data → ms-swift JSONL (see README.md)."""
