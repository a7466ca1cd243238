"""The mocap-ros command (main) and its verbs: assets, bags (sample-bag, process,
replay).
"""
