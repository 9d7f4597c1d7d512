"""The agents stage: tools (`tools`), the agent loop and its arms (`loop`, where `ARMS`
lives), trace metrics (`metrics`), the task subset (`selection`), one model x arm run
(`run`), intervals and paired comparisons (`intervals`), and the stage summary (`summary`)."""
