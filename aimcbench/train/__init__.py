"""aimcbench.train"""
