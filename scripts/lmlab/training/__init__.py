"""The trainer core every trainer of the project uses (SFT, reward model, DPO, ORPO, RLOO).

    checkpoints  work folders, run keys, complete checkpoints, the resume point
    signals      SIGTERM/SIGINT: save a checkpoint, stop, exit 128 + signal
    outputs      train_log.tsv rows, model cards, publishing a finished folder
    run          device settings, one resumable `trainer.train()`, the alignment trainers' shared arguments and output folder
"""
