"""Developer tools, never imported by estimation/ or ros/: the benchmark (bench), sample
frames (frames), the DDS demo (demo), the sample bag (sample_bag) and generated stand-in model
files (synthetic/).
"""
